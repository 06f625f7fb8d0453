"""Answers from anywhere: a file of pre-generated answers becomes systems a study compares."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from sbs.analysis.selectors import speed_rows
from sbs.catalog import services as catalog_services
from sbs.catalog.answer_files import AnswerFileError, parse_answers
from sbs.catalog.answers import answers_import
from sbs.catalog.models import ImportedAnswer, ModelEntry
from sbs.core.errors import ServiceError
from sbs.questions import services as question_services
from sbs.studies import services
from sbs.studies.models import Answer, Assignment, GenerationRun, Pair, Study
from sbs.studies.services import GenerationSettingsError
from tests import factories

pytestmark = pytest.mark.django_db


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()


def answer_rows(
    systems: tuple[str, ...] = ("vllm-run", "api-model"), n: int = 6, **extra: Any
) -> list[dict[str, Any]]:
    return [
        {"question_id": f"q{i}", "system": s, "answer": f"Ответ {k + 1} на вопрос {i}.", **extra}
        for k, s in enumerate(systems)
        for i in range(n)
    ]


def refusal(exc: pytest.ExceptionInfo[AnswerFileError]) -> list[tuple[int, str]]:
    return [(e.line, e.message) for e in exc.value.errors]


# --- the file ------------------------------------------------------------------------------


def test_jsonl_keeps_what_was_given_and_leaves_the_rest_missing():
    rows = [
        {"question_id": "q1", "system": " vllm  run ", "answer": " **Да** ", "new_tokens": 12,
         "prompt_tokens": "30", "seconds": 0.25, "metadata": {"temperature": 0.7}, "run": "a1"},
        {"question_id": "q2", "system": "vllm run", "answer": "Нет", "tokens": 3},
    ]  # fmt: skip
    first, second = parse_answers(jsonl(rows), "jsonl")
    assert (first.system, first.text, first.new_tokens, first.prompt_tokens) == (
        "vllm run", "**Да**", 12, 30,
    )  # fmt: skip
    assert first.seconds == 0.25
    assert first.metadata == {"temperature": 0.7, "run": "a1"}  # unknown keys kept as metadata
    assert (second.new_tokens, second.prompt_tokens, second.seconds) == (3, None, None)


def test_csv_columns_other_than_the_known_ones_go_to_the_metadata():
    data = (
        "question_id,system,answer,seconds,metadata,backend\n"
        'q1,gpt,"Ответ, с запятой",1.5,"{""top_p"": 0.9}",vllm\n'
        "q2,gpt,Ответ два,,,\n"
    ).encode()
    first, second = parse_answers(data, "csv")
    assert first.text == "Ответ, с запятой" and first.seconds == 1.5
    assert first.metadata == {"top_p": 0.9, "backend": "vllm"}
    assert second.seconds is None and second.metadata == {}


def test_every_bad_row_is_named_with_its_line():
    lines = [
        json.dumps({"question_id": "q0", "system": "s", "answer": "fine"}),
        "{not json",
        json.dumps({"question_id": "q1", "system": "s"}),
        json.dumps({"question_id": "q2", "system": "s", "answer": "x", "new_tokens": -3}),
        json.dumps({"question_id": "q3", "system": "s", "answer": "x", "seconds": "fast"}),
        json.dumps({"question_id": "q4", "system": "s", "answer": "   "}),
        json.dumps({"question_id": "q0", "system": "s", "answer": "again"}),
        json.dumps({"question_id": "q5", "system": "", "answer": "x", "metadata": [1]}),
        json.dumps({"question_id": "q6", "system": "s", "answer": "x", "seconds": "nan"}),
    ]
    with pytest.raises(AnswerFileError) as exc:
        parse_answers("\n".join(lines).encode(), "jsonl")
    found = refusal(exc)
    assert [line for line, _ in found] == [2, 3, 4, 5, 6, 7, 8, 8, 9]
    text = " | ".join(m for _, m in found)
    for expected in ("invalid JSON", "missing key “answer”", "whole number", "“seconds”",
                     "empty answer", "twice (first on line 1)", "empty system name",
                     "“metadata” must be a JSON object"):  # fmt: skip
        assert expected in text, expected


def test_a_csv_without_a_required_column_is_refused_at_its_header():
    with pytest.raises(AnswerFileError) as exc:
        parse_answers(b"question_id,answer\nq1,text\n", "csv")
    assert refusal(exc) == [(1, "missing column “system” (found: question_id, answer)")]


# --- the import ----------------------------------------------------------------------------


def test_import_makes_one_system_per_name_with_its_answers():
    qset = factories.question_set(6)
    systems = answers_import(
        data=jsonl(answer_rows(new_tokens=7, seconds=0.5)), file_format="jsonl",
        question_set=qset, user=None,
    )  # fmt: skip
    assert sorted(s.name for s in systems) == ["api-model", "vllm-run"]
    for system in systems:
        assert system.kind == ModelEntry.Kind.ANSWERS and system.is_imported
        assert system.imported_answers.count() == 6
        assert len(system.sha256) == 64
        assert system.recipe["imported_answers"][0]["question_set"] == qset.name
    with pytest.raises(ServiceError):  # no files anywhere: nothing can load it
        catalog_services.model_path(systems[0])


def test_a_file_that_leaves_questions_unanswered_writes_nothing():
    qset = factories.question_set(6)
    rows = [r for r in answer_rows() if not (r["system"] == "api-model" and r["question_id"] in ("q2", "q4"))]  # fmt: skip
    rows.append({"question_id": "q99", "system": "vllm-run", "answer": "x"})
    with pytest.raises(AnswerFileError) as exc:
        answers_import(data=jsonl(rows), file_format="jsonl", question_set=qset, user=None)
    found = refusal(exc)
    assert found[0][0] == 0 and "“api-model” has no answer for 2 of the 6 questions" in found[0][1]
    assert "“q2”, “q4”" in found[0][1]
    assert found[1] == (
        len(rows),
        "unknown question id “q99”: the question set has no such question",
    )
    assert not ModelEntry.objects.exists() and not ImportedAnswer.objects.exists()


def test_a_name_taken_by_model_files_or_by_answers_to_the_same_set_is_refused(
    model_store, tiny_model_dir
):
    qset = factories.question_set(6)
    factories.model_entry("real-model", tiny_model_dir)
    with pytest.raises(AnswerFileError, match="registered model with files"):
        answers_import(data=jsonl(answer_rows(("real-model",))), file_format="jsonl",
                       question_set=qset, user=None)  # fmt: skip
    answers_import(data=jsonl(answer_rows(("gpt",))), file_format="jsonl", question_set=qset, user=None)  # fmt: skip
    with pytest.raises(AnswerFileError, match="already has answers to this question set"):
        answers_import(data=jsonl(answer_rows(("gpt", "other"))), file_format="jsonl",
                       question_set=qset, user=None)  # fmt: skip
    assert not ModelEntry.objects.filter(name="other").exists()  # nothing half-written


def test_the_same_system_may_answer_another_set_and_its_digest_follows():
    first = factories.question_set(3, name="first")
    second = factories.question_set(2, name="second")
    (system,) = answers_import(data=jsonl(answer_rows(("gpt",), n=3)), file_format="jsonl",
                               question_set=first, user=None)  # fmt: skip
    digest = system.sha256
    (again,) = answers_import(data=jsonl(answer_rows(("gpt",), n=2)), file_format="jsonl",
                              question_set=second, user=None)  # fmt: skip
    assert again.pk == system.pk and again.imported_answers.count() == 5
    assert again.sha256 != digest and len(again.recipe["imported_answers"]) == 2


# --- studies of imported systems ------------------------------------------------------------


def _study(qset: Any, a: ModelEntry, b: ModelEntry, **kw: Any) -> Study:
    return services.study_create(
        owner=factories.researcher(), name="imported", question_set=qset, model_a=a, model_b=b,
        generation={"max_new_tokens": 8}, **kw,
    )  # fmt: skip


def test_a_study_of_two_imported_systems_opens_at_once_and_flags_self_naming():
    qset = factories.question_set(6)
    rows = answer_rows(seconds=2.0, new_tokens=40)
    rows[0]["answer"] = "Я — ChatGPT, и вот мой ответ."  # would unblind the pair
    for r in rows[6:]:  # api-model recorded no timings
        del r["seconds"], r["new_tokens"]
    vllm, api = sorted(answers_import(data=jsonl(rows), file_format="jsonl", question_set=qset,
                                      user=None), key=lambda s: s.name, reverse=True)  # fmt: skip
    study = _study(qset, vllm, api)
    annotator = factories.annotator("ann")
    study.annotators.add(annotator)
    runs = services.study_start(study=study)
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN
    assert all(
        r.status == GenerationRun.Status.DONE for r in GenerationRun.objects.filter(study=study)
    )
    assert len(runs) == 2 and Answer.objects.filter(run__study=study).count() == 12
    flagged = Answer.objects.get(run__study=study, self_identifies=True)
    assert flagged.question.external_id == "q0"
    held = Pair.objects.get(study=study, question=flagged.question)
    assert held.status == Pair.Status.HELD
    assert Assignment.objects.filter(pair__study=study, annotator=annotator).count() == 6
    with pytest.raises(ServiceError, match="imported"):
        services.answer_review(study=study, answer_id=flagged.pk, decision="regenerate")
    by_model = {r.model: r for r in speed_rows(study)}
    assert by_model["vllm-run"].median_tokens_per_second == 20.0
    assert by_model["api-model"].median_tokens_per_second is None  # not recorded, not 0
    assert by_model["api-model"].median_new_tokens is None
    assert by_model["api-model"].eos_share is None


def test_a_study_refuses_a_system_that_did_not_answer_its_set():
    answered = factories.question_set(3, name="answered")
    other = factories.question_set(4, name="other")
    gpt, old = answers_import(data=jsonl(answer_rows(("gpt", "old"), n=3)), file_format="jsonl",
                              question_set=answered, user=None)  # fmt: skip
    with pytest.raises(GenerationSettingsError) as exc:
        _study(other, gpt, old)
    fields = [p.field for p in exc.value.problems]
    assert fields == ["model_a", "model_b"]
    assert "4 of the 4 questions of “other” have none" in exc.value.problems[0].message


def test_an_imported_system_beside_a_generated_model_waits_for_the_worker(
    model_store, tiny_model_dir, django_capture_on_commit_callbacks
):
    qset = factories.question_set(3)
    model = factories.model_entry("tiny", tiny_model_dir)
    (system,) = answers_import(data=jsonl(answer_rows(("gpt",), n=3)), file_format="jsonl",
                               question_set=qset, user=None)  # fmt: skip
    study = _study(qset, model, system)
    with django_capture_on_commit_callbacks() as sent:
        services.study_start(study=study)
    assert len(sent) == 1  # only the model with files goes to the GPU queue
    imported = GenerationRun.objects.get(study=study, model=system)
    generated = GenerationRun.objects.get(study=study, model=model)
    assert imported.status == GenerationRun.Status.DONE and imported.done_count == 3
    assert generated.status == GenerationRun.Status.PENDING
    study.refresh_from_db()
    assert study.status == Study.Status.GENERATING
    with pytest.raises(ServiceError, match="imported answers alone"):
        question_services.benchmark_run_start(model=system, benchmark=None)  # type: ignore[arg-type]


# --- the command, the page -------------------------------------------------------------------


def test_the_command_imports_and_reports_refusals_by_line(tmp_path: Path):
    factories.question_set(2, name="set")
    good = tmp_path / "answers.jsonl"
    good.write_bytes(jsonl(answer_rows(("gpt",), n=2)))
    out = StringIO()
    call_command("import_answers", str(good), "--question-set", "set", stdout=out)
    assert "imported 2 answers of 'gpt'" in out.getvalue()
    bad = tmp_path / "bad.csv"
    bad.write_text("question_id,system,answer\nq0,x,ok\nq1,x,\n", encoding="utf-8")
    with pytest.raises(CommandError, match="line 3: empty answer"):
        call_command("import_answers", str(bad), "--question-set", "set")


def test_the_question_set_page_imports_and_lists_the_systems(client):
    owner = factories.researcher()
    client.force_login(owner)
    qset = factories.question_set(2)
    url = f"/studies/questions/{qset.pk}/"
    bad = StringIO('{"question_id": "q0", "system": "gpt", "answer": "x"}\n')
    bad.name = "answers.jsonl"
    page = client.post(url, {"file": bad})
    assert page.status_code == 200
    assert "“gpt” has no answer for 1 of the 2 questions" in page.content.decode()
    good = StringIO(jsonl(answer_rows(("gpt",), n=2)).decode())
    good.name = "answers.jsonl"
    response = client.post(url, {"file": good})
    assert response.status_code == 302
    page = client.get(url)
    system = ModelEntry.objects.get(name="gpt")
    assert f'href="/studies/models/{system.pk}/"' in page.content.decode()
    detail = client.get(f"/studies/models/{system.pk}/").content.decode()
    assert "Imported answers" in detail and "/adapt/" not in detail
    assert client.get(f"/studies/models/{system.pk}/adapt/").status_code == 404
    assert client.get(f"/studies/models/{system.pk}/download/").status_code == 404
