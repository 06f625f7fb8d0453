"""Question sets and models through the API: the pages' forms, importers and checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from sbs.catalog.models import ModelEntry, ModelImportJob
from sbs.questions.models import Question, QuestionSet
from tests import factories
from tests.api.conftest import api_client, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher_api() -> Client:
    return api_client(token_for(factories.researcher("res")))


def _jsonl(*rows: dict) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()


def test_a_question_set_imported_through_the_api_equals_the_pages(researcher_api):
    data = _jsonl(
        {"id": "a", "question": "Что такое ёж?", "category": "animals"},
        {"id": "b", "question": "Сколько будет 2+2?", "reference": "4"},
    )
    response = researcher_api.post(
        "/api/question-sets", {"name": "api set", "file": SimpleUploadedFile("q.jsonl", data)}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "api set" and body["questions"] == 2
    # The page, given the same file, computes the same canonical content hash.
    page = Client()
    page.force_login(factories.researcher("pageuser"))
    page.post(
        reverse("questions:sets"), {"name": "page set", "file": SimpleUploadedFile("q.jsonl", data)}
    )
    assert QuestionSet.objects.get(name="page set").sha256 == body["sha256"]

    listed = {s["name"]: s for s in researcher_api.get("/api/question-sets").json()}
    assert listed["api set"] == body
    detail = researcher_api.get(f"/api/question-sets/{body['id']}").json()
    assert [q["external_id"] for q in detail["items"]] == ["a", "b"]
    assert detail["items"][1]["reference"] == "4"
    assert QuestionSet.objects.get(pk=body["id"]).created_by.username == "res"


def test_a_malformed_file_is_refused_whole_with_line_numbered_errors(researcher_api):
    lines = [
        json.dumps({"id": "ok", "question": "первый"}, ensure_ascii=False),
        "{not json",
        json.dumps({"id": "ok", "question": "повтор"}, ensure_ascii=False),
        json.dumps({"id": "empty", "question": ""}),
    ]
    response = researcher_api.post(
        "/api/question-sets",
        {"name": "bad", "file": SimpleUploadedFile("bad.jsonl", "\n".join(lines).encode())},
    )
    assert response.status_code == 400
    body = response.json()
    lines_named = {e["line"] for e in body["errors"]}
    assert {2, 3, 4} <= lines_named, body
    assert all(e["message"] for e in body["errors"])
    assert "line 2" in body["detail"]
    assert not QuestionSet.objects.filter(name="bad").exists()
    assert not Question.objects.exists()


def test_cp1251_a_wrong_suffix_and_an_oversized_file_are_refused_as_on_the_page(
    researcher_api, settings
):
    cp1251 = "question\nпервый вопрос\n".encode("cp1251")
    refused = researcher_api.post(
        "/api/question-sets", {"name": "x", "file": SimpleUploadedFile("x.csv", cp1251)}
    ).json()
    assert refused["errors"][0]["line"] == 2 and "UTF-8" in refused["errors"][0]["message"]
    wrong = researcher_api.post(
        "/api/question-sets", {"name": "x", "file": SimpleUploadedFile("x.txt", b"question\n")}
    )
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["line"] == 0
    settings.QUESTION_FILE_MAX_BYTES = 100
    big = researcher_api.post(
        "/api/question-sets",
        {"name": "x", "file": SimpleUploadedFile("x.csv", b"question\n" + b"y" * 500)},
    )
    assert big.status_code == 400 and "file" in big.json()["errors"]
    assert not QuestionSet.objects.exists()


def test_a_duplicate_name_is_refused(researcher_api):
    factories.question_set(2, name="taken")
    response = researcher_api.post(
        "/api/question-sets",
        {"name": "taken", "file": SimpleUploadedFile("q.jsonl", _jsonl({"question": "x"}))},
    )
    assert response.status_code == 400 and "taken" in response.json()["detail"]
    assert QuestionSet.objects.filter(name="taken").count() == 1


# ------------------------------------------------------------------------------- models


def test_models_are_listed_and_detailed_without_their_server_paths(researcher_api):
    base = ModelEntry.objects.create(
        name="base", kind="hf_folder", path="/srv/m/base", sha256="a" * 64
    )
    ModelEntry.objects.create(
        name="base-ru", kind="hf_folder", path="/srv/m/ru", sha256="b" * 64, parent=base,
        recipe={"steps": {"train": {"steps": 10, "losses": [2.0, 1.0]}}},
    )  # fmt: skip
    ModelEntry.objects.create(name="reserved", kind="hf_folder", path="", sha256="", ready=False)
    listed = researcher_api.get("/api/models").json()
    assert [m["name"] for m in listed] == ["base", "base-ru"]  # not the reserved name
    assert listed[1]["parent"] == {"id": base.pk, "name": "base"}
    assert "/srv/m" not in json.dumps(listed)
    detail = researcher_api.get(f"/api/models/{base.pk}").json()
    assert detail["children"] == [{"id": listed[1]["id"], "name": "base-ru"}]
    adapted = researcher_api.get(f"/api/models/{listed[1]['id']}").json()
    assert adapted["recipe"]["steps"]["train"]["steps"] == 10
    assert any(f["step"] == "train" for f in adapted["facts"])
    reserved = ModelEntry.objects.get(name="reserved")
    assert researcher_api.get(f"/api/models/{reserved.pk}").status_code == 404


def test_a_gguf_upload_is_registered_as_on_the_page(researcher_api, model_store, tmp_path):
    from tests.studies.test_modelfiles import make_gguf

    data = make_gguf(tmp_path / "tiny.gguf").read_bytes()
    response = researcher_api.post(
        "/api/models", {"name": "tiny", "archive": SimpleUploadedFile("tiny.gguf", data)}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    entry = ModelEntry.objects.get(pk=body["id"])
    assert entry.kind == body["kind"] == "gguf" and entry.created_by.username == "res"
    assert (model_store / entry.path).exists()
    again = researcher_api.post(
        "/api/models", {"name": "tiny", "archive": SimpleUploadedFile("tiny.gguf", data)}
    )
    assert again.status_code == 400 and "tiny" in again.json()["detail"]


def test_a_pickle_upload_is_refused_and_nothing_is_registered(researcher_api, model_store):
    response = researcher_api.post(
        "/api/models", {"name": "evil", "archive": SimpleUploadedFile("evil.pt", b"\x80\x04.")}
    )
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not ModelEntry.objects.exists()


def test_registering_by_path_starts_an_import_job_or_is_refused_when_switched_off(
    researcher_api, settings, tmp_path
):
    settings.MODEL_IMPORT_ROOTS = []
    off = researcher_api.post("/api/models", {"name": "m", "path": "/srv/models/m"})
    assert off.status_code == 400 and "MODEL_IMPORT_ROOTS" in off.json()["detail"]
    both = researcher_api.post("/api/models", {"name": "m"})
    assert both.status_code == 400 and both.json()["errors"]["__all__"]
    settings.MODEL_IMPORT_ROOTS = [str(tmp_path)]
    started = researcher_api.post("/api/models", {"name": "m", "path": str(tmp_path / "m")})
    assert started.status_code == 202, started.content
    job = ModelImportJob.objects.get(pk=started.json()["id"])
    assert job.status == "pending" and started.json()["model"] is None
    imports = researcher_api.get("/api/models/imports").json()
    assert [j["id"] for j in imports] == [job.pk]


def test_an_adaptation_takes_the_forms_defaults_and_refuses_unknown_settings(researcher_api):
    from sbs.catalog.models import AdaptationJob

    base = ModelEntry.objects.create(name="base", kind="hf_folder", path="b", sha256="a" * 64)
    unknown = researcher_api.post(
        f"/api/models/{base.pk}/adapt",
        {"name": "base-ru", "config": {"no_such_knob": 1}},
        content_type="application/json",
    )
    assert unknown.status_code == 400 and "no_such_knob" in unknown.json()["detail"]
    response = researcher_api.post(
        f"/api/models/{base.pk}/adapt", {"name": "base-ru"}, content_type="application/json"
    )
    assert response.status_code == 202, response.content
    job = AdaptationJob.objects.get(pk=response.json()["id"])
    assert job.parent == base and job.name == "base-ru" and job.config
    listed = researcher_api.get("/api/models/adaptations").json()
    assert listed[0]["id"] == job.pk and listed[0]["parent"]["name"] == "base"


def test_model_files_path_is_never_in_an_answer(researcher_api, model_store: Path):
    ModelEntry.objects.create(name="x", kind="gguf", path="x-123/model.gguf", sha256="c" * 64)
    assert "x-123" not in researcher_api.get("/api/models").content.decode()


def test_answers_from_elsewhere_import_through_the_api_and_make_a_study(researcher_api):
    qset = factories.question_set(2)
    rows = [
        {"question_id": f"q{i}", "system": name, "answer": f"Ответ {k} на {i}", "seconds": 1}
        for k, name in enumerate(("vllm-llama", "api-model"))
        for i in range(2)
    ]
    url = f"/api/question-sets/{qset.pk}/answers"
    bad = researcher_api.post(url, {"file": SimpleUploadedFile("a.jsonl", _jsonl(*rows[:3]))})
    assert bad.status_code == 400
    assert (
        "“api-model” has no answer for 1 of the 2 questions" in bad.json()["errors"][0]["message"]
    )
    assert not ModelEntry.objects.exists()
    response = researcher_api.post(url, {"file": SimpleUploadedFile("a.jsonl", _jsonl(*rows))})
    assert response.status_code == 201, response.content
    systems = {m["name"]: m for m in response.json()}
    assert set(systems) == {"vllm-llama", "api-model"}
    assert {m["kind"] for m in systems.values()} == {"answers"}
    study = researcher_api.post(
        "/api/studies",
        {"name": "imported", "question_set": qset.pk, "model_a": systems["vllm-llama"]["id"],
         "model_b": systems["api-model"]["id"]},
        content_type="application/json",
    )  # fmt: skip
    assert study.status_code == 201, study.content
    started = researcher_api.post(f"/api/studies/{study.json()['id']}/start")
    assert started.status_code in (200, 202), started.content
    status = researcher_api.get(f"/api/studies/{study.json()['id']}").json()
    assert status["status"] == "open"  # two imported systems: nothing to generate
