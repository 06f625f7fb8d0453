"""Reads for the question-set pages."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from sbs.questions.models import QuestionSet


def question_sets_with_counts() -> QuerySet[QuestionSet]:
    return QuestionSet.objects.annotate(n=Count("questions"))
