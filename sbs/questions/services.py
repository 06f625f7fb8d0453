"""Writes for question sets."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from sbs.core.errors import ServiceError
from sbs.questions import importers
from sbs.questions.models import Question, QuestionSet

__all__ = ["ServiceError"]


@transaction.atomic
def question_set_import(
    *, name: str, data: bytes, filename: str, user: User | None = None, language: str = "ru"
) -> QuestionSet:
    """Validate the whole file, then write the set and its questions in one transaction."""
    name = name.strip()
    if not name:
        raise ServiceError(_("The question set needs a name."))
    parsed = importers.parse_questions(data, importers.detect_format(filename))
    if QuestionSet.objects.filter(name=name).exists():
        raise ServiceError(_("A question set named “%(name)s” already exists.") % {"name": name})
    qset = QuestionSet.objects.create(
        name=name, language=language, sha256=importers.content_sha256(parsed), created_by=user
    )
    Question.objects.bulk_create(
        Question(
            question_set=qset,
            external_id=q.external_id,
            text=q.text,
            category=q.category,
            reference=q.reference,
            position=i,
        )
        for i, q in enumerate(parsed)
    )
    return qset
