"""Studies of N systems: every pair of systems, or a budget of pairs; sides, screens,
exclusions, the analysis frame and export/import, on the database."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from django.contrib.auth.models import User

from sbs.analysis.selectors import study_vote_frame, vote_export_rows
from sbs.catalog.answers import answers_import
from sbs.catalog.models import ModelEntry
from sbs.core.errors import ServiceError
from sbs.studies import services
from sbs.studies.models import Answer, Assignment, Pair, Study
from sbs.studies.selectors import pairs_not_shown
from sbs.studies.transfer import study_export, study_import
from sbs.voting import selectors as voting
from sbs.voting.services import vote_record
from tests import factories
from tests.catalog.test_answer_import import answer_rows, jsonl

pytestmark = pytest.mark.django_db

NAMES = ("alpha-sys", "beta-sys", "gamma-sys", "delta-sys")


def _systems(qset: Any, names: tuple[str, ...] = NAMES, n: int = 6) -> list[ModelEntry]:
    imported = answers_import(data=jsonl(answer_rows(names, n=n)), file_format="jsonl",
                              question_set=qset, user=None)  # fmt: skip
    by_name = {m.name: m for m in imported}
    return [by_name[name] for name in names]


def _owner() -> Any:
    return User.objects.filter(username="res").first() or factories.researcher()


def _study(qset: Any, systems: list[ModelEntry], **kw: Any) -> Study:
    return services.study_create(
        owner=_owner(), name=kw.pop("name", "n systems"), question_set=qset,
        model_a=systems[0], model_b=systems[1], more_models=systems[2:], **kw,
    )  # fmt: skip


def _open(study: Study, annotators: list[Any]) -> Study:
    study.annotators.add(*annotators)
    services.study_start(study=study)
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN
    return study


def test_every_pair_of_four_systems_on_every_question_with_the_right_texts_on_screen():
    qset = factories.question_set(6)
    systems = _systems(qset)
    annotator = factories.annotator("ann")
    study = _open(_study(qset, systems), [annotator])
    assert [m.name for m in study.systems()] == list(NAMES)
    pairs = Pair.objects.filter(study=study)
    assert pairs.count() == 6 * 6  # C(4, 2) pairs of systems on each question
    assert Counter((p.model_x_id, p.model_y_id) for p in pairs) == {
        (x.pk, y.pk): 6 for k, x in enumerate(systems) for y in systems[k + 1 :]
    }
    mine = Assignment.objects.filter(annotator=annotator, pair__study=study)
    assert mine.count() == 36
    assert all(a.left_model_id in (a.pair.model_x_id, a.pair.model_y_id) for a in mine)
    texts = {
        (a.question_id, a.run.model_id): a.text for a in Answer.objects.filter(run__study=study)
    }
    for _ in range(5):  # the next screen shows the left system's answer and its pair's other one
        screen = voting.vote_screen(annotator, study)
        a = Assignment.objects.select_related("pair").get(pk=screen.assignment_id)
        q = a.pair.question_id
        assert screen.left_text == texts[(q, a.left_model_id)]
        assert screen.right_text == texts[(q, a.pair.other(a.left_model_id))]
        assert voting.screen_for(a, study) == screen  # the ORM reading agrees with the SQL
        vote_record(annotator=annotator, assignment_id=a.pk, choice="left", seconds_on_page=2.0)
    frame = study_vote_frame(study)
    assert len(frame) == 5
    for row in frame.itertuples():  # each vote's pair of systems, in the study's order
        assert NAMES.index(row.model_a) < NAMES.index(row.model_b)
        assert row.left in (row.model_a, row.model_b)
    for row in vote_export_rows(study):
        assert {row["left"], row["right"]} <= set(NAMES) and row["left"] != row["right"]


def test_a_budget_plans_a_balanced_incomplete_design():
    qset = factories.question_set(10)
    systems = _systems(qset, n=10)
    study = _open(_study(qset, systems, pair_budget=15, judgments_per_pair=2),
                  [factories.annotator(f"a{i}") for i in range(5)])  # fmt: skip
    pairs = list(Pair.objects.filter(study=study))
    assert len(pairs) == 15
    per_question = Counter(p.question_id for p in pairs)
    assert sorted(per_question.values()) == [1] * 5 + [2] * 5
    per_systems = Counter((p.model_x_id, p.model_y_id) for p in pairs)
    assert len(per_systems) == 6 and set(per_systems.values()) <= {2, 3}
    assert Assignment.objects.filter(pair__study=study).count() == 30  # 15 pairs x 2 judgments


def test_the_choice_of_systems_and_budget_is_checked():
    qset = factories.question_set(3)
    systems = _systems(qset, n=3)
    with pytest.raises(ServiceError, match="each may be chosen once"):
        _study(qset, [systems[0], systems[1], systems[0]])
    with pytest.raises(ServiceError, match="at least 6 .* at most 18"):
        _study(qset, systems, pair_budget=5)
    with pytest.raises(ServiceError, match="at least 6 .* at most 18"):
        _study(qset, systems, pair_budget=19)
    assert not Study.objects.exists()


def test_an_excluded_answer_withdraws_only_the_pairs_of_its_system():
    qset = factories.question_set(4)
    systems = _systems(qset, NAMES[:3], n=4)
    annotator = factories.annotator("ann")
    study = _open(_study(qset, systems), [annotator])
    for a in Assignment.objects.filter(pair__study=study):
        vote_record(annotator=annotator, assignment_id=a.pk, choice="right", seconds_on_page=1.0)
    bad = Answer.objects.get(run__study=study, run__model=systems[2], question__position=0)
    services.answer_review(study=study, answer_id=bad.pk, decision="exclude")
    status = {
        (p.model_x_id, p.model_y_id): p.status
        for p in Pair.objects.filter(study=study, question=bad.question)
    }
    assert status == {
        (systems[0].pk, systems[1].pk): Pair.Status.SHOWN,
        (systems[0].pk, systems[2].pk): Pair.Status.WITHDRAWN,
        (systems[1].pk, systems[2].pk): Pair.Status.WITHDRAWN,
    }
    assert pairs_not_shown(study) == {bad.question_id: Pair.Status.WITHDRAWN}
    frame = study_vote_frame(study)
    assert len(frame) == 12 - 2  # only the two pairs with the excluded answer leave the analysis
    left_out = frame[frame["question"] == bad.question.external_id]
    assert set(zip(left_out["model_a"], left_out["model_b"], strict=True)) == {NAMES[:2]}
    excluded = [r for r in vote_export_rows(study) if r["excluded"]]
    assert len(excluded) == 2 and all(NAMES[2] in (r["left"], r["right"]) for r in excluded)


def test_a_study_of_three_systems_exports_and_imports_back_identical(django_user_model):
    qset = factories.question_set(3)
    systems = _systems(qset, NAMES[:3], n=3)
    annotator = factories.annotator("ann")
    study = _open(_study(qset, systems, pair_budget=4), [annotator])
    for i, a in enumerate(Assignment.objects.filter(pair__study=study)):
        vote_record(annotator=annotator, assignment_id=a.pk, choice=("left", "tie")[i % 2],
                    seconds_on_page=1.0)  # fmt: skip
    exported = study_export(study)
    assert exported["version"] == 2 and len(exported["models"]["more"]) == 1
    owner = django_user_model.objects.get(username="res")
    copy_ = study_import(copy.deepcopy(exported), owner=owner, question_set_name="copy")
    again = study_export(copy_)
    again["question_set"]["name"] = exported["question_set"]["name"]
    assert again == exported
    assert [m.name for m in copy_.systems()] == list(NAMES[:3])


def test_a_version_1_export_of_two_models_still_imports(django_user_model):
    qset = factories.question_set(3)
    systems = _systems(qset, NAMES[:2], n=3)
    annotator = factories.annotator("ann")
    study = _open(_study(qset, systems), [annotator])
    for a in Assignment.objects.filter(pair__study=study):
        vote_record(annotator=annotator, assignment_id=a.pk, choice="left", seconds_on_page=1.0)
    v2 = study_export(study)
    v1 = copy.deepcopy(v2)  # what version 1 wrote: a pair per question, assignments by question
    v1["version"] = 1
    del v1["models"]["more"], v1["study"]["pair_budget"]
    v1["pairs"] = [p["question"] for p in v2["pairs"]]
    for row in v1["assignments"]:
        row["question"] = v2["pairs"][row.pop("pair")]["question"]
    owner = django_user_model.objects.get(username="res")
    imported = study_import(v1, owner=owner, question_set_name="copy")
    again = study_export(imported)
    assert again["pairs"] == v2["pairs"] and again["assignments"] == v2["assignments"]
