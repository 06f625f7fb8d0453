"""Recording votes. The database constraint (one vote per assignment) is the last line."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from sbs.studies.models import Assignment, Pair, Study
from sbs.voting.models import Choice, Vote, VoteRevision

MAX_SECONDS_ON_PAGE = 24 * 3600.0


class VoteError(ValueError):
    """A refused vote, with a message for the annotator."""


class NoSuchAssignment(VoteError):
    """The assignment is not this annotator's (in this study): nothing to show them."""


class AlreadyJudged(VoteError):
    """A vote for a pair this annotator judged already (a second tab, an old page): the
    stored vote stands; changing it is an explicit action."""

    def __init__(self, message: str, assignment_id: int) -> None:
        super().__init__(message)
        self.assignment_id = assignment_id


@dataclass(frozen=True)
class VoteOutcome:
    vote: Vote
    created: bool  # False: a repeated submission or a change of an existing vote
    changed: bool


def vote_record(
    *,
    annotator: User,
    assignment_id: int,
    choice: str,
    seconds_on_page: float,
    comment: str = "",
    change: bool = False,
    study_id: int | None = None,
) -> VoteOutcome:
    """Store the vote on the annotator's own assignment of an open study.

    A second identical submission (a double click, a retried request) returns the stored
    vote unchanged. A different one is refused with :class:`AlreadyJudged` (a stale tab)
    unless ``change`` says the annotator chose to change it: then the old vote is kept as a
    revision first. With ``study_id`` the assignment must also belong to that study; an
    assignment that is not theirs raises :class:`NoSuchAssignment`.
    """
    if choice not in Choice.values:
        raise VoteError(_("unknown choice"))
    seconds = min(max(float(seconds_on_page), 0.0), MAX_SECONDS_ON_PAGE)
    comment = comment.strip()[:5000]
    mine = Assignment.objects.select_related("pair__study").filter(
        pk=assignment_id, annotator=annotator
    )
    if study_id is not None:
        mine = mine.filter(pair__study_id=study_id)
    assignment = mine.first()
    if assignment is None:
        raise NoSuchAssignment(_("no such assignment"))
    if assignment.pair.study.status != Study.Status.OPEN:
        raise VoteError(_("This study is closed for voting."))
    if assignment.pair.status != Pair.Status.SHOWN:
        raise VoteError(_("This pair is not open for votes right now."))
    try:
        with transaction.atomic():
            vote = Vote.objects.create(
                assignment=assignment, choice=choice, comment=comment, seconds_on_page=seconds
            )
        return VoteOutcome(vote=vote, created=True, changed=False)
    except IntegrityError:
        pass
    with transaction.atomic():
        stored = Vote.objects.select_for_update().filter(assignment=assignment).first()
        if stored is None:  # the assignment went meanwhile (the annotator was removed)
            raise VoteError(_("no such assignment"))
        vote = stored
        if vote.choice == choice and vote.comment == comment:
            return VoteOutcome(vote=vote, created=False, changed=False)
        if not change:
            raise AlreadyJudged(
                _("You have already judged this pair; your first vote stands. Change it below."),
                assignment.pk,
            )
        VoteRevision.objects.create(
            vote=vote,
            choice=vote.choice,
            comment=vote.comment,
            seconds_on_page=vote.seconds_on_page,
        )
        vote.choice, vote.comment = choice, comment
        vote.save(update_fields=["choice", "comment", "updated_at"])
    return VoteOutcome(vote=vote, created=False, changed=True)
