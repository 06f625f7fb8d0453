"""A whole study exports to JSON and imports back identical, through the commands."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from sbs.questions.models import QuestionSet
from sbs.studies.models import Answer, Assignment, GenerationRun, Study
from sbs.studies.transfer import TransferError, study_export, study_import
from sbs.voting.models import Vote, VoteRevision
from sbs.voting.services import vote_record
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def rich(two_models: Any) -> Study:
    """A study with everything an export must carry: repeats, changed votes with comments,
    flagged and excluded answers, run timings and errors."""
    owner = factories.researcher("owner")
    annotators = [factories.annotator("ann1"), factories.annotator("ann2")]
    study = factories.open_study_with_answers(
        owner, two_models, annotators, n=4, repeat_share=0.5, seed=7
    )
    GenerationRun.objects.filter(study=study).update(
        device="cuda:0", worker="w1@gpu", attempts=2, load_seconds=1.25,
        error="CUDA OOM on the first try", started_at=timezone.now(), finished_at=timezone.now(),
    )  # fmt: skip
    Answer.objects.filter(run__study=study, question__position=1).update(
        self_identifies=True, excluded=True, tokenize_seconds=0.01, batch_size=4
    )
    choices = ["left", "right", "tie", "both_bad"]
    for annotator in annotators:
        for i, a in enumerate(Assignment.objects.filter(annotator=annotator).order_by("order")):
            vote_record(annotator=annotator, assignment_id=a.pk, choice=choices[i % 4],
                        seconds_on_page=1.5 + i, comment=f"комментарий {i}")  # fmt: skip
            if i % 3 == 0:  # changed twice: two revisions
                vote_record(annotator=annotator, assignment_id=a.pk, choice="tie",
                            seconds_on_page=9.0, change=True)  # fmt: skip
                vote_record(annotator=annotator, assignment_id=a.pk, choice="right",
                            seconds_on_page=9.0, comment="передумал", change=True)  # fmt: skip
    return study


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_study_exports_and_imports_back_identical(rich, tmp_path):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    call_command("export_study", str(rich.pk), out=str(first))
    exported = _read(first)
    assert exported["study"]["status"] == "open"
    assert any(a["repeat_of"] is not None for a in exported["assignments"])
    assert sum(len(a["vote"]["revisions"]) for a in exported["assignments"] if a["vote"]) >= 4
    assert not _keys(exported) & {"id", "pk", "study_id", "model_id"}  # natural keys only
    counts = {m: m.objects.count() for m in (Answer, Assignment, Vote, VoteRevision)}

    # A fresh database, as far as this study goes: the study, its set, one annotator gone.
    qset = rich.question_set
    rich.delete()
    qset.delete()
    get_user_model().objects.filter(username="ann2").delete()
    assert not Vote.objects.exists()

    stdout = io.StringIO()
    call_command("import_study", str(first), owner="owner", stdout=stdout)
    imported = Study.objects.get()
    assert f"as id {imported.pk}" in stdout.getvalue()
    call_command("export_study", str(imported.pk), out=str(second))
    assert _read(second) == exported
    assert {m: m.objects.count() for m in counts} == counts
    recreated = get_user_model().objects.get(username="ann2")
    assert not recreated.has_usable_password()


def test_import_reuses_an_identical_question_set_and_refuses_a_different_one(rich):
    data = study_export(rich)
    again = study_import(data, owner=rich.owner)
    assert again.pk != rich.pk and again.question_set_id == rich.question_set_id
    assert study_export(again) == data

    changed = copy.deepcopy(data)
    changed["question_set"]["questions"][0]["text"] = "другой вопрос"
    with pytest.raises(TransferError, match="different question set named"):
        study_import(changed, owner=rich.owner)
    renamed = study_import(changed, owner=rich.owner, question_set_name="qs (copy)")
    assert renamed.question_set.name == "qs (copy)"
    assert renamed.question_set.questions.get(position=0).text == "другой вопрос"


def test_import_refuses_unregistered_models_and_writes_nothing(rich, tmp_path):
    data = study_export(rich)
    before = {m: m.objects.count() for m in (Study, QuestionSet, Answer, Vote)}
    wrong = copy.deepcopy(data)
    wrong["models"]["b"]["sha256"] = "0" * 64
    wrong["question_set"]["name"] = "a set that would be new"
    with pytest.raises(TransferError, match="Adapted-RuTiny.*not registered here"):
        study_import(wrong, owner=rich.owner)
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(wrong), encoding="utf-8")
    with pytest.raises(CommandError, match="Register the same files under that name first"):
        call_command("import_study", str(path), owner="owner")
    assert {m: m.objects.count() for m in before} == before


def test_import_refuses_a_non_researcher_an_unfinished_run_and_a_foreign_file(rich):
    data = study_export(rich)
    with pytest.raises(TransferError, match="not a researcher"):
        study_import(data, owner=get_user_model().objects.get(username="ann1"))
    running = copy.deepcopy(data)
    running["runs"][0]["status"] = "running"
    with pytest.raises(TransferError, match="while generating answers"):
        study_import(running, owner=rich.owner)
    with pytest.raises(TransferError, match="not an sbs study export"):
        study_import({"name": "x"}, owner=rich.owner)
    broken = copy.deepcopy(data)
    del broken["assignments"][0]["annotator"]
    broken["question_set"]["name"] = "another new set"
    with pytest.raises(TransferError, match="malformed export"):
        study_import(broken, owner=rich.owner)
    assert not QuestionSet.objects.filter(name="another new set").exists()
