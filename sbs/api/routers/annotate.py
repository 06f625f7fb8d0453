"""The annotator's part of the API: their studies, the next pair, votes and changes.

The same blinding as the vote screen (:mod:`sbs.voting.views`): a pair is its question and
two answers by position, from :func:`sbs.voting.selectors.screen_for`; a study is its
number, state and the annotator's progress. Nothing here names a model, points at one, or
carries the plan's secret; the study's name (a researcher may name it after the models) is
not given either. Votes go through :func:`sbs.voting.services.vote_record`, with its
one-vote-per-pair protection, and the time on the pair is measured by the server from the
signed ``shown`` stamp, as on the page.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.http import Http404, HttpRequest
from ninja import Router, Status

from sbs.api.auth import AccountToken, caller
from sbs.api.schemas import (
    AnnotatorStudyOut,
    Detail,
    MyVoteDetailOut,
    MyVoteOut,
    NextPairOut,
    VoteChangeIn,
    VoteIn,
    VoteOut,
)
from sbs.studies.models import Assignment, Study
from sbs.voting import selectors as voting_selectors
from sbs.voting.services import VoteOutcome, vote_record
from sbs.voting.shown import seconds_on_page, shown_token

router = Router(tags=["annotation"], auth=AccountToken())


def _annotated_study(user: User, study_id: int) -> Study:
    """A study in which the caller has pairs to judge, else 404 (as the vote pages)."""
    study = voting_selectors.annotated_study(user, study_id)
    if study is None:
        raise Http404
    return study


def _vote_out(assignment_id: int, outcome: VoteOutcome) -> dict[str, Any]:
    kind = "recorded" if outcome.created else "changed" if outcome.changed else "unchanged"
    return {"assignment": assignment_id, "choice": outcome.vote.choice, "outcome": kind}


@router.get("/studies", response=list[AnnotatorStudyOut], url_name="annotate_study_list")
def annotate_study_list(request: HttpRequest) -> list[dict[str, Any]]:
    """The caller's studies to annotate, with their progress."""
    return [
        {"id": row.study.pk, "status": row.study.status, "done": row.done, "total": row.total}
        for row in voting_selectors.annotator_studies(caller(request))
    ]


@router.get("/studies/{int:study_id}", response=NextPairOut, url_name="annotate_next")
def annotate_next(request: HttpRequest, study_id: int) -> dict[str, Any]:
    """Progress and the next pair to judge (``pair`` is null when there is none now: all
    judged, the rest held for review, or the study not open)."""
    user = caller(request)
    found = voting_selectors.next_pair(user, study_id)
    if found is None:  # no such study, or not theirs
        raise Http404
    study, (done, total, held, _assigned), screen = found.study, found.progress, found.screen
    pair = None
    if screen is not None:
        pair = {
            "assignment": screen.assignment_id,
            "position": done + 1,
            "question": screen.question,
            "left": screen.left_text,
            "right": screen.right_text,
            "shown": shown_token(screen.assignment_id),
        }
    return {
        "study": study.pk,
        "status": study.status,
        "done": done,
        "total": total,
        "held": held,
        "pair": pair,
    }


@router.post(
    "/studies/{int:study_id}/votes",
    response={200: VoteOut, 201: VoteOut, 400: Detail, 409: Detail},
    url_name="annotate_vote",
    openapi_extra={
        "description": "201: recorded; 200: the same vote sent again (nothing changes); "
        "409: this pair was already judged otherwise (the first vote stands)."
    },
)
def annotate_vote(request: HttpRequest, study_id: int, body: VoteIn) -> Status[dict[str, Any]]:
    """Vote on the pair given by the study's next pair, as the vote screen does."""
    user = caller(request)
    study = _annotated_study(user, study_id)
    outcome = vote_record(  # an assignment not theirs in this study: NoSuchAssignment, 404
        annotator=user,
        assignment_id=body.assignment,
        choice=body.choice,
        seconds_on_page=seconds_on_page(body.shown, body.assignment),
        comment=body.comment,
        study_id=study.pk,
    )
    return Status(201 if outcome.created else 200, _vote_out(body.assignment, outcome))


@router.get("/studies/{int:study_id}/votes", response=list[MyVoteOut], url_name="annotate_votes")
def annotate_votes(request: HttpRequest, study_id: int) -> list[dict[str, Any]]:
    """The caller's votes in this study in the order shown: question and choice by
    position."""
    user = caller(request)
    study = _annotated_study(user, study_id)
    return [
        {
            "assignment": v.assignment_id,
            "number": v.number,
            "question": v.question,
            "choice": v.choice,
            "choice_label": v.choice_label,
            "changes": v.changes,
        }
        for v in voting_selectors.my_votes(user, study)
    ]


def _judged(user: User, study: Study, assignment_id: int) -> Assignment:
    assignment = voting_selectors.own_assignment(user, study, assignment_id)
    if assignment is None or not hasattr(assignment, "vote"):
        raise Http404
    return assignment


@router.get(
    "/studies/{int:study_id}/votes/{int:assignment_id}",
    response=MyVoteDetailOut,
    url_name="annotate_vote_detail",
)
def annotate_vote_detail(request: HttpRequest, study_id: int, assignment_id: int) -> dict[str, Any]:
    """One of the caller's votes with its pair as it was shown (to change it, send
    ``shown`` back with the new choice)."""
    user = caller(request)
    study = _annotated_study(user, study_id)
    assignment = _judged(user, study, assignment_id)
    screen = voting_selectors.screen_for(assignment, study)
    return {
        "assignment": assignment.pk,
        "number": assignment.order + 1,
        "question": screen.question,
        "left": screen.left_text,
        "right": screen.right_text,
        "choice": assignment.vote.choice,
        "comment": assignment.vote.comment,
        "can_change": study.status == Study.Status.OPEN,
        "shown": shown_token(assignment.pk),
    }


@router.put(
    "/studies/{int:study_id}/votes/{int:assignment_id}",
    response={200: VoteOut, 400: Detail},
    url_name="annotate_vote_change",
)
def annotate_vote_change(
    request: HttpRequest, study_id: int, assignment_id: int, body: VoteChangeIn
) -> dict[str, Any]:
    """Change a vote; the earlier one is kept as a revision."""
    user = caller(request)
    study = _annotated_study(user, study_id)
    assignment = _judged(user, study, assignment_id)
    outcome = vote_record(
        annotator=user,
        assignment_id=assignment.pk,
        choice=body.choice,
        seconds_on_page=seconds_on_page(body.shown, assignment.pk),
        comment=body.comment,
        change=True,
    )
    return _vote_out(assignment.pk, outcome)
