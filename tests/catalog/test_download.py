"""Taking an adapted model out: the zip of its files and of its adapter, for researchers only,
streamed; the job's work folder cleaned unless ADAPTATION_KEEP_WORK."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from sbs.catalog import services
from sbs.catalog.models import AdaptationJob, ModelEntry
from tests import factories

pytestmark = pytest.mark.django_db


def _exported(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A folder shaped like the pipeline's export: the model, a card, an adapter beside it."""
    out = tmp_path / "work" / "model"
    shutil.copytree(tiny_model_dir, out)
    (out / "README.md").write_text("---\nlanguage:\n- ru\n---\n# card\n")
    adapter = out / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    (adapter / "README.md").write_text("# adapter\n")
    (adapter / "notes.txt").write_text("scratch")  # never copied: not an adapter file
    return out


def _adapted(parent: ModelEntry, model_dir: Path, name: str = "tiny-ru") -> ModelEntry:
    from sbs.core import jobs

    job = services.adaptation_start(parent=parent, name=name, config={"vocab_size": 600})
    lease = services.adaptation_claim(job_id=job.pk, worker="w", device="cpu", max_attempts=3)
    assert lease is not None
    entry = services.adaptation_finish(lease=lease, model_dir=model_dir, summary={"train": {}})
    assert jobs  # (enqueueing is switched off by the fixture)
    return entry


@pytest.fixture
def no_enqueue(monkeypatch: pytest.MonkeyPatch) -> None:
    from sbs.core import jobs

    monkeypatch.setattr(jobs, "_enqueue", lambda model, pk: None)


def _zip(response: Any) -> zipfile.ZipFile:
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_a_researcher_downloads_the_adapted_model_and_its_adapter(
    two_models, tiny_model_dir, tmp_path, no_enqueue
):
    entry = _adapted(two_models[0], _exported(tiny_model_dir, tmp_path))
    installed = services.model_path(entry)
    assert sorted(p.name for p in (installed / "adapter").iterdir()) == [
        "README.md", "adapter_config.json", "adapter_model.safetensors"]  # fmt: skip

    client = Client()
    client.force_login(factories.researcher("someone-else"))  # a shared library
    page = client.get(reverse("catalog:detail", args=[entry.pk])).content.decode()
    url = reverse("catalog:download", args=[entry.pk])
    assert "Download (zip)" in page and f'href="{url}"' in page
    assert "Download the adapter" in page and f'href="{url}?part=adapter"' in page

    response = client.get(url)
    assert response["Content-Disposition"] == 'attachment; filename="tiny-ru.zip"'
    archive = _zip(response)
    names = set(archive.namelist())
    assert {"tiny-ru/config.json", "tiny-ru/model.safetensors", "tiny-ru/README.md"} <= names
    assert not any("adapter" in n for n in names)
    assert (
        archive.read("tiny-ru/model.safetensors") == (installed / "model.safetensors").read_bytes()
    )

    adapter = _zip(client.get(url, {"part": "adapter"}))
    assert sorted(adapter.namelist()) == ["tiny-ru-adapter/README.md",
        "tiny-ru-adapter/adapter_config.json", "tiny-ru-adapter/adapter_model.safetensors"]  # fmt: skip
    assert adapter.read("tiny-ru-adapter/adapter_model.safetensors") == b"weights"


def test_the_download_is_refused_to_annotators_and_anonymous_visitors(
    two_models, tiny_model_dir, tmp_path, no_enqueue
):
    entry = _adapted(two_models[0], _exported(tiny_model_dir, tmp_path))
    url = reverse("catalog:download", args=[entry.pk])
    annotator = Client()
    annotator.force_login(factories.annotator("ann"))
    for part in ({}, {"part": "adapter"}):
        assert annotator.get(url, part).status_code == 404
        anonymous = Client().get(url, part)
        assert anonymous.status_code == 302 and "login" in anonymous.url
    researcher = Client()
    researcher.force_login(factories.researcher())
    assert researcher.post(url).status_code == 405
    assert researcher.get(reverse("catalog:download", args=[entry.pk + 999])).status_code == 404


def test_a_model_not_made_by_the_tool_offers_no_download_and_has_no_adapter(two_models):
    client = Client()
    client.force_login(factories.researcher())
    parent = two_models[0]
    page = client.get(reverse("catalog:detail", args=[parent.pk])).content.decode()
    assert "Download (zip)" not in page
    url = reverse("catalog:download", args=[parent.pk])
    assert client.get(url, {"part": "adapter"}).status_code == 404


def test_the_archive_name_is_sanitised(two_models, tiny_model_dir, tmp_path, no_enqueue):
    entry = _adapted(two_models[0], _exported(tiny_model_dir, tmp_path), name='../x"\r\n;y <z>')
    client = Client()
    client.force_login(factories.researcher())
    response = client.get(reverse("catalog:download", args=[entry.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="x-y-z.zip"'
    assert all(n.startswith("x-y-z/") for n in _zip(response).namelist())
    russian = _adapted(two_models[0], _exported(tiny_model_dir, tmp_path / "2"), name="модель")
    response = client.get(reverse("catalog:download", args=[russian.pk]))
    assert response["Content-Disposition"] == f'attachment; filename="model-{russian.pk}.zip"'


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("keep", [False, True])
def test_the_job_cleans_its_work_folder_unless_the_setting_keeps_it(
    two_models, tiny_model_dir, tmp_path, settings, monkeypatch, keep
):
    """The adaptation task asks the pipeline to clean exactly when ADAPTATION_KEEP_WORK is off
    (the cleaning itself: tests/adaptation/test_export.py)."""
    import adaptation.pipeline
    from sbs.core import jobs
    from workers.tasks.adaptation import adapt_model

    monkeypatch.setattr(jobs, "_enqueue", lambda model, pk: None)
    settings.ADAPTATION_KEEP_WORK = keep
    exported = _exported(tiny_model_dir, tmp_path)
    seen: dict[str, Any] = {}

    def fake_pipeline(*args: Any, clean: bool = False, **kwargs: Any) -> Any:
        seen["clean"] = clean
        return adaptation.pipeline.PipelineResult(model_dir=exported, steps={"train": {}})

    monkeypatch.setattr(adaptation.pipeline, "run_pipeline", fake_pipeline)
    job = services.adaptation_start(parent=two_models[0], name="tiny-ru", config={})
    assert adapt_model.apply(args=(job.pk,)).get() == "done"
    assert seen["clean"] is (not keep)
    job.refresh_from_db()
    assert job.status == AdaptationJob.Status.DONE
    assert (services.model_path(job.result) / "adapter" / "adapter_config.json").exists()
