"""Reads for the annotator's screens. Nothing here returns a model's name or id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from django.contrib.auth.models import User
from django.db.models import Count, Q

from sbs.studies.models import Answer, Assignment, Pair, Study
from sbs.voting.models import Choice

# Pairs whose answers are under review (held) or excluded (withdrawn) are not shown.
_SHOWN = Q(pair__status=Pair.Status.SHOWN)
_NOT_WITHDRAWN = ~Q(pair__status=Pair.Status.WITHDRAWN)


@dataclass(frozen=True)
class StudyProgress:
    study: Study
    done: int
    total: int


def annotator_studies(user: User) -> list[StudyProgress]:
    mine = Q(pairs__assignments__annotator=user) & ~Q(pairs__status=Pair.Status.WITHDRAWN)
    rows = (
        Study.objects.filter(pairs__assignments__annotator=user)
        .annotate(
            total=Count("pairs__assignments", filter=mine),
            done=Count("pairs__assignments__vote", filter=mine),
        )
        .order_by("-created_at")
        .distinct()
    )
    return [StudyProgress(study=s, done=s.done, total=s.total) for s in rows]


def next_assignment(user: User, study: Study) -> Assignment | None:
    """The first unvoted assignment in the annotator's own order: resuming is automatic.
    Pairs held for review or withdrawn are skipped."""
    return (
        Assignment.objects.filter(_SHOWN, pair__study=study, annotator=user, vote__isnull=True)
        .select_related("pair__question")
        .order_by("order")
        .first()
    )


class Progress(NamedTuple):
    """An annotator's standing in a study; withdrawn pairs count nowhere but in
    ``assigned`` (which says whether the study is theirs at all)."""

    done: int
    total: int
    held: int
    assigned: int


def progress(user: User, study: Study) -> Progress:
    """Votes cast, assignments, assignments held for review, and every assignment (withdrawn
    ones too) of this annotator in this study, in one query."""
    counts = Assignment.objects.filter(pair__study=study, annotator=user).aggregate(
        done=Count("vote", filter=_NOT_WITHDRAWN),
        total=Count("pk", filter=_NOT_WITHDRAWN),
        held=Count("pk", filter=Q(pair__status=Pair.Status.HELD, vote__isnull=True)),
        assigned=Count("pk"),
    )
    return Progress(counts["done"], counts["total"], counts["held"], counts["assigned"])


@dataclass(frozen=True)
class Screen:
    """What the vote screen shows: a question and two texts, by position only."""

    assignment_id: int
    question: str
    left_text: str
    right_text: str


def screen_for(assignment: Assignment, study: Study) -> Screen:
    other = study.model_b_id if assignment.left_model_id == study.model_a_id else study.model_a_id
    texts = dict(
        Answer.objects.filter(
            run__study=study, question=assignment.pair.question_id, excluded=False
        ).values_list("run__model_id", "text")
    )
    return Screen(
        assignment_id=assignment.pk,
        question=assignment.pair.question.text,
        left_text=texts.get(assignment.left_model_id, ""),
        right_text=texts.get(other, ""),
    )


@dataclass(frozen=True)
class PastVote:
    """One of the annotator's votes as they saw it: position, question, their choice."""

    assignment_id: int
    number: int
    question: str
    choice: str
    choice_label: str
    changes: int


def my_votes(user: User, study: Study) -> list[PastVote]:
    """The annotator's votes in this study in the order they were shown (withdrawn pairs
    left out); choices are screen positions, never models."""
    rows = (
        Assignment.objects.filter(_NOT_WITHDRAWN, pair__study=study, annotator=user)
        .filter(vote__isnull=False)
        .select_related("pair__question", "vote")
        .annotate(changes=Count("vote__revisions"))
        .order_by("order")
    )
    return [
        PastVote(
            assignment_id=a.pk,
            number=a.order + 1,
            question=a.pair.question.text,
            choice=a.vote.choice,
            choice_label=str(Choice(a.vote.choice).label),
            changes=a.changes,
        )
        for a in rows
    ]


def own_assignment(user: User, study: Study, assignment_id: int) -> Assignment | None:
    """One of the annotator's own assignments on a pair that is shown (with its vote)."""
    return (
        Assignment.objects.filter(_SHOWN, pk=assignment_id, pair__study=study, annotator=user)
        .select_related("pair__question", "vote")
        .first()
    )
