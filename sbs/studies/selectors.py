"""Reads for the researcher's study pages."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet

from sbs.studies.models import Answer, GenerationRun, Pair, Study


def studies_of(owner: User) -> QuerySet[Study]:
    return Study.objects.filter(owner_id=owner.pk).select_related(
        "question_set", "model_a", "model_b"
    )


def runs_of(study: Study) -> QuerySet[GenerationRun]:
    return study.runs.select_related("model")


def flagged_answers(study: Study) -> QuerySet[Answer]:
    """Answers in which a model names itself, with their review state."""
    return Answer.objects.filter(run__study=study, self_identifies=True).select_related(
        "question", "run__model"
    )


def answers_of(study: Study) -> QuerySet[Answer]:
    return (
        Answer.objects.filter(run__study=study)
        .select_related("question", "run__model")
        .order_by("question__position", "run__model__name")
    )


def pairs_not_shown(study: Study) -> dict[int, str]:
    """question id -> "held" or "withdrawn" for the pairs annotators do not see."""
    return dict(study.pairs.exclude(status=Pair.Status.SHOWN).values_list("question_id", "status"))
