"""Limits on what people send: upload sizes, question file sizes, nesting in study exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from sbs.catalog.models import ModelEntry
from sbs.questions import services
from sbs.questions.models import QuestionSet
from sbs.studies.transfer import TransferError, export_parse
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def res_client(client):  # type: ignore[no-untyped-def]
    client.force_login(factories.researcher())
    return client


def test_question_file_over_its_limit_is_refused_before_it_is_read(
    res_client, settings, monkeypatch
):  # type: ignore[no-untyped-def]
    settings.QUESTION_FILE_MAX_BYTES = 1000

    def must_not_run(**kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the file was read and parsed")

    monkeypatch.setattr(services, "question_set_import", must_not_run)
    data = b"question\n" + b"x" * 2000 + b"\n"
    response = res_client.post(
        reverse("questions:sets"),
        {"name": "big", "file": SimpleUploadedFile("big.csv", data)},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "2.0\xa0KB" in html and "1000\xa0bytes" in html
    assert not QuestionSet.objects.exists()


def test_model_upload_over_the_limit_is_refused_with_the_limit_named(
    res_client, settings, model_store
):  # type: ignore[no-untyped-def]
    settings.MAX_UPLOAD_BYTES = 1000
    response = res_client.post(
        reverse("catalog:models"),
        {"name": "big", "archive": SimpleUploadedFile("m.gguf", b"GGUF" + b"\0" * 3000)},
    )
    assert response.status_code == 200
    assert "1000\xa0bytes" in response.content.decode()
    assert not ModelEntry.objects.exists()
    assert not model_store.exists() or not any(model_store.iterdir())


def test_request_far_over_the_upload_limit_is_cut_off_before_it_is_stored(
    res_client, settings, model_store, monkeypatch
):  # type: ignore[no-untyped-def]
    """Content-Length over MAX_UPLOAD_BYTES + DATA_UPLOAD_MAX_MEMORY_SIZE: a 400, like Django's
    own limit on form data, and no upload handler ever sees a byte of the file."""
    from django.core.files.uploadhandler import TemporaryFileUploadHandler

    settings.MAX_UPLOAD_BYTES = 1000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # anything bigger would go to a temporary file
    started = []
    monkeypatch.setattr(
        TemporaryFileUploadHandler, "new_file", lambda self, *a, **k: started.append(a)
    )
    response = res_client.post(
        reverse("catalog:models"),
        {"name": "huge", "archive": SimpleUploadedFile("m.gguf", b"\0" * 50_000)},
    )
    assert response.status_code == 400
    assert started == []
    assert not ModelEntry.objects.exists()


def test_upload_under_the_limit_still_works(res_client, settings, model_store, tmp_path):  # type: ignore[no-untyped-def]
    from tests.studies.test_modelfiles import make_gguf

    data = make_gguf(tmp_path / "tiny.gguf").read_bytes()
    settings.MAX_UPLOAD_BYTES = len(data)
    response = res_client.post(
        reverse("catalog:models"),
        {"name": "tiny", "archive": SimpleUploadedFile("tiny.gguf", data)},
    )
    assert response.status_code == 302
    assert ModelEntry.objects.get(name="tiny").kind == "gguf"


def test_deeply_nested_study_export_is_refused_by_the_command(tmp_path: Path):
    factories.researcher("owner")
    path = tmp_path / "study.json"
    path.write_text('{"format": "sbs-study", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(CommandError, match="nested more than 64 levels"):
        call_command("import_study", str(path), owner="owner")


def test_export_nested_below_the_parser_limit_is_refused_before_saving():
    generation = {"a": None}
    inner = generation
    for _ in range(200):  # under json's recursion limit, far over anything an export holds
        inner["a"] = {"a": None}
        inner = inner["a"]
    raw = json.dumps({"format": "sbs-study", "version": 1, "study": {"generation": generation}})
    with pytest.raises(TransferError, match="nested more than 64 levels"):
        export_parse(raw.encode())
    with pytest.raises(TransferError, match="not valid JSON"):
        export_parse(b"{broken")
