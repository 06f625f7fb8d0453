"""Deleting is safe: what votes depend on cannot be removed from under them."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import ProtectedError

from sbs.catalog.models import ModelEntry
from sbs.questions.models import QuestionSet
from sbs.studies.models import Answer, Assignment, GenerationRun, Study
from sbs.voting.models import Vote
from sbs.voting.services import vote_record

pytestmark = pytest.mark.django_db


def _counts() -> dict[str, int]:
    return {
        m.__name__: m.objects.count()
        for m in (ModelEntry, QuestionSet, Study, GenerationRun, Answer, Assignment, Vote)
    }


@pytest.fixture
def voted(live):
    assignment = Assignment.objects.filter(annotator=live.annotators[0]).first()
    vote_record(annotator=live.annotators[0], assignment_id=assignment.pk, choice="tie",
                seconds_on_page=2.0)  # fmt: skip
    return live


@pytest.mark.parametrize("which", ["model_a", "model_b"])
def test_deleting_a_model_used_by_a_study_is_refused(voted, which):
    before = _counts()
    entry = getattr(voted.study, which)
    with pytest.raises(ProtectedError), transaction.atomic():
        entry.delete()
    with pytest.raises(ProtectedError), transaction.atomic():
        ModelEntry.objects.filter(pk=entry.pk).delete()  # the bulk path too
    assert _counts() == before


def test_deleting_a_question_set_used_by_a_study_is_refused(voted):
    before = _counts()
    with pytest.raises(ProtectedError), transaction.atomic():
        voted.study.question_set.delete()
    with pytest.raises(ProtectedError), transaction.atomic():
        QuestionSet.objects.filter(pk=voted.study.question_set_id).delete()
    assert _counts() == before


def test_every_reference_to_a_model_or_question_protects_it():
    """The schema, read from the models, so that no new reference slips in as CASCADE."""
    from django.apps import apps

    from sbs.questions.models import Question

    owned = {("Question", "question_set")}  # a set's own questions belong to it
    loose = [
        f"{m.__name__}.{f.name}: {f.remote_field.on_delete.__name__}"
        for m in apps.get_models()
        for f in m._meta.get_fields()
        if f.is_relation
        and f.many_to_one
        and f.concrete
        and f.related_model in (ModelEntry, Question, QuestionSet)
        and (m.__name__, f.name) not in owned
        and f.remote_field.on_delete.__name__ not in ("PROTECT", "RESTRICT")
    ]
    assert loose == []
