"""Reads for the annotator's screens. Nothing here returns a model's name or id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from django.contrib.auth.models import User
from django.db.models import Case, Count, F, OuterRef, Q, QuerySet, Subquery, When

from sbs.studies.models import Answer, Assignment, GenerationRun, Pair, Study
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


def _with_texts(assignments: QuerySet[Assignment], study: Study) -> QuerySet[Assignment]:
    """Each assignment with its question and its two answers' texts (``left_text``,
    ``right_text``) in the same query: the right side is the pair's other system."""
    other = Case(
        When(left_model_id=F("pair__model_x_id"), then=F("pair__model_y_id")),
        default=F("pair__model_x_id"),
    )
    answers = Answer.objects.filter(
        run__study=study, question=OuterRef("pair__question_id"), excluded=False
    )
    return (
        assignments.select_related("pair__question")
        .annotate(right_model=other)
        .annotate(
            left_text=Subquery(answers.filter(run__model=OuterRef("left_model_id")).values("text")[:1]),
            right_text=Subquery(answers.filter(run__model=OuterRef("right_model")).values("text")[:1]),
        )
    )  # fmt: skip


def next_assignment(user: User, study: Study) -> Assignment | None:
    """The first unvoted assignment in the annotator's own order: resuming is automatic.
    Pairs held for review or withdrawn are skipped. Its answers come in the same query."""
    mine = Assignment.objects.filter(
        _SHOWN, pair__study=study, annotator=user, vote__isnull=True
    ).order_by("order")
    return _with_texts(mine, study).first()


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
    found = study_with_progress(user, study.pk)
    return found[1] if found is not None else Progress(0, 0, 0, 0)


def annotated_study(user: User, study_id: int) -> Study | None:
    """The study if this user has pairs to judge in it (withdrawn ones too), else None."""
    return Study.objects.filter(pk=study_id, pairs__assignments__annotator=user).distinct().first()


def study_with_progress(user: User, study_id: int) -> tuple[Study, Progress] | None:
    """The study and the annotator's :class:`Progress` in it (the vote page reads both in
    one query); None when there is no such study."""
    mine = Q(pairs__assignments__annotator=user)
    shown = mine & ~Q(pairs__status=Pair.Status.WITHDRAWN)
    held = mine & Q(pairs__status=Pair.Status.HELD, pairs__assignments__vote__isnull=True)
    study = (
        Study.objects.filter(pk=study_id)
        .annotate(
            done=Count("pairs__assignments__vote", filter=shown),
            total=Count("pairs__assignments", filter=shown),
            held=Count("pairs__assignments", filter=held),
            assigned=Count("pairs__assignments", filter=mine),
        )
        .first()
    )
    if study is None:
        return None
    return study, Progress(study.done, study.total, study.held, study.assigned)


@dataclass(frozen=True)
class Screen:
    """What the vote screen shows: a question and two texts, by position only."""

    assignment_id: int
    question: str
    left_text: str
    right_text: str


def screen_for(assignment: Assignment, study: Study) -> Screen:
    """The screen of an assignment read by :func:`next_assignment` or :func:`own_assignment`
    (texts already fetched), or of any other one (one more query)."""
    if not hasattr(assignment, "left_text"):
        assignment = _with_texts(Assignment.objects.filter(pk=assignment.pk), study).get()
    return Screen(
        assignment_id=assignment.pk,
        question=assignment.pair.question.text,
        left_text=getattr(assignment, "left_text", None) or "",
        right_text=getattr(assignment, "right_text", None) or "",
    )


def _vote_screen_sql() -> str:
    """One statement: the annotator's next shown, unvoted assignment in their order, with its
    question and both answers (the right one is the pair's other system). Written out once,
    because the ORM spends more time composing it than the database spends running it."""
    from django.db import connection

    from sbs.questions.models import Question
    from sbs.voting.models import Vote

    def table(model: Any) -> str:
        return str(connection.ops.quote_name(model._meta.db_table))

    answer = (
        f"SELECT an.text FROM {table(Answer)} an JOIN {table(GenerationRun)} r ON an.run_id = r.id"
        " WHERE r.study_id = %s AND an.question_id = p.question_id AND NOT an.excluded"
        " AND r.model_id = {model} ORDER BY an.id LIMIT 1"
    )
    order = connection.ops.quote_name("order")
    right = "CASE WHEN a.left_model_id = p.model_x_id THEN p.model_y_id ELSE p.model_x_id END"
    return (
        f"SELECT a.id, q.text, ({answer.format(model='a.left_model_id')}),"
        f" ({answer.format(model=right)})"
        f" FROM {table(Assignment)} a JOIN {table(Pair)} p ON a.pair_id = p.id"
        f" JOIN {table(Question)} q ON p.question_id = q.id"
        f" LEFT JOIN {table(Vote)} v ON v.assignment_id = a.id"
        f" WHERE p.study_id = %s AND a.annotator_id = %s AND p.status = %s AND v.id IS NULL"
        f" ORDER BY a.{order} LIMIT 1"
    )


def vote_screen(user: User, study: Study) -> Screen | None:
    """The vote page's next pair in one query: :func:`screen_for` of
    :func:`next_assignment`, or None when nothing is left to judge."""
    from django.db import connection

    params: list[int | str] = [study.pk, study.pk, study.pk, user.pk, str(Pair.Status.SHOWN)]
    with connection.cursor() as cursor:
        cursor.execute(_vote_screen_sql(), params)
        row = cursor.fetchone()
    if row is None:
        return None
    return Screen(assignment_id=row[0], question=row[1], left_text=row[2] or "",
                  right_text=row[3] or "")  # fmt: skip


@dataclass(frozen=True)
class NextPair:
    """What the vote page and the API's next pair show: the study, the annotator's progress
    and the pair to judge now (None: all judged, the rest held, or the study not open)."""

    study: Study
    progress: Progress
    screen: Screen | None


def next_pair(user: User, study_id: int) -> NextPair | None:
    """The annotator's next pair in a study of theirs in two queries; None when the study
    does not exist or is not theirs."""
    found = study_with_progress(user, study_id)
    if found is None or not found[1].assigned:
        return None
    study, standing = found
    screen = vote_screen(user, study) if study.status == Study.Status.OPEN else None
    return NextPair(study, standing, screen)


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
    mine = Assignment.objects.filter(_SHOWN, pk=assignment_id, pair__study=study, annotator=user)
    return _with_texts(mine.select_related("vote"), study).first()
