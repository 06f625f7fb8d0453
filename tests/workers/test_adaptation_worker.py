"""Adapting a model from the researcher's page, run by a real worker process."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sbs.catalog.models import AdaptationJob, ModelEntry
from tests import factories
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def test_researcher_adapts_a_model_and_it_is_registered_as_its_child(client, two_models, worker):
    parent = two_models[0]
    client.force_login(factories.researcher())
    page = client.get(reverse("catalog:adapt", args=[parent.pk]))
    assert page.status_code == 200 and f"{parent.name}-ru" in page.content.decode()
    response = client.post(
        reverse("catalog:adapt", args=[parent.pk]),
        {
            "name": "tiny-ru",
            "vocab_size": 600,
            "tokenizer_type": "unigram",
            "init": "mean",
            "head": "auto",
            "train_steps": 2,
            "batch_size": 2,
            "seq_len": 32,
            "learning_rate": 0.002,
            "lora_steps": 0,
            "lora_r": 4,
            "lora_alpha": 8,
            "max_corpus_lines": 3000,
        },  # fmt: skip
    )
    assert response.status_code == 302
    job = AdaptationJob.objects.get(name="tiny-ru")

    def finished() -> bool:
        job.refresh_from_db()
        return job.status in (AdaptationJob.Status.DONE, AdaptationJob.Status.FAILED)

    wait_for(finished, 240, "the adaptation job", worker.log)
    assert job.status == AdaptationJob.Status.DONE, job.error
    child = ModelEntry.objects.get(name="tiny-ru")
    assert job.result_id == child.pk and child.parent_id == parent.pk
    assert child.recipe["config"]["vocab_size"] == 600
    assert child.recipe["steps"]["train"]["steps"] == 2
    assert child.kind == "hf_folder" and child.sha256 != parent.sha256
    models_page = client.get(reverse("catalog:models")).content.decode()
    assert "tiny-ru" in models_page


def test_adaptation_with_a_taken_name_is_refused(client, two_models):
    client.force_login(factories.researcher())
    response = client.post(
        reverse("catalog:adapt", args=[two_models[0].pk]),
        {
            "name": two_models[1].name,
            "vocab_size": 600,
            "tokenizer_type": "unigram",
            "init": "mean",
            "head": "auto",
            "train_steps": 1,
            "batch_size": 1,
            "seq_len": 32,
            "learning_rate": 0.01,
            "lora_steps": 0,
            "lora_r": 4,
            "lora_alpha": 8,
        },  # fmt: skip
    )
    assert response.status_code == 200 and "already exists" in response.content.decode()
    assert not AdaptationJob.objects.exists()


def test_a_running_adaptation_reserves_its_name_and_installs_into_that_entry(
    two_models, monkeypatch
):
    """Nobody can register a model under the name while the job runs (the swap of the old
    code: a look-up by name and parent at the end took whatever held the name then)."""
    from sbs.catalog import services as catalog_services
    from sbs.core import jobs
    from sbs.studies import services

    monkeypatch.setattr(jobs, "_enqueue", lambda model, pk: None)
    parent = two_models[0]
    job = catalog_services.adaptation_start(
        parent=parent, name="tiny-ru", config={"vocab_size": 600}
    )
    reserved = ModelEntry.objects.get(name="tiny-ru")
    assert job.result_id == reserved.pk and not reserved.ready
    with pytest.raises(services.ServiceError):  # the swap attempt
        catalog_services.model_register(
            name="tiny-ru", source=catalog_services.model_path(two_models[1]), parent=parent
        )
    with pytest.raises(services.ServiceError):
        catalog_services.adaptation_start(parent=parent, name="tiny-ru", config={})
    assert "tiny-ru" not in [m.name for m in ModelEntry.objects.ready()]
    lease = catalog_services.adaptation_claim(
        job_id=job.pk, worker="w", device="cpu", max_attempts=3
    )
    entry = catalog_services.adaptation_finish(
        lease=lease, model_dir=catalog_services.model_path(two_models[1]), summary={"train": {}}
    )
    assert entry.pk == reserved.pk and entry.ready and entry.sha256 == two_models[1].sha256
    job.refresh_from_db()
    assert job.status == "done" and job.result_id == reserved.pk


# The form is built from PipelineConfig's field metadata and the init-method registry.
POST_CONTRACT = ["name", "vocab_size", "tokenizer_type", "init", "head", "train_steps", "batch_size",
                 "seq_len", "learning_rate", "lora_steps", "lora_r", "lora_alpha",
                 "max_corpus_lines"]  # fmt: skip


def test_the_adapt_form_is_built_from_the_pipeline_config_and_the_registry():
    from adaptation.pipeline import PipelineConfig
    from adaptation.registry import options
    from adaptation.vocab import INIT_METHODS, without_target
    from sbs.catalog.forms import AdaptForm

    form = AdaptForm()
    assert list(form.fields) == POST_CONTRACT
    assert [value for value, _label in form.fields["init"].choices] == list(
        INIT_METHODS.names(without_target)
    )
    for spec in options(PipelineConfig):
        if spec.option.web:
            field = form.fields[spec.name]
            assert str(field.label) == spec.option.label and field.initial == spec.default
            assert getattr(field, "min_value", None) == spec.option.min
            assert getattr(field, "max_value", None) == spec.option.max


def test_a_registered_init_method_can_be_chosen_on_the_page(client, two_models, monkeypatch):
    from adaptation.vocab import INIT_METHODS, InitMethod
    from sbs.core import jobs

    monkeypatch.setitem(INIT_METHODS, "zeros", InitMethod("zeros", lambda *a: None, "all zeros"))
    monkeypatch.setattr(jobs, "_enqueue", lambda model, pk: None)
    client.force_login(factories.researcher())
    url = reverse("catalog:adapt", args=[two_models[0].pk])
    page = client.get(url).content.decode()
    assert 'value="zeros"' in page and "all zeros" in page
    data = {"name": "tiny-ru", "vocab_size": 600, "tokenizer_type": "unigram", "init": "zeros",
            "head": "tied", "train_steps": 1, "batch_size": 1, "seq_len": 32, "learning_rate": 0.01,
            "lora_steps": 0, "lora_r": 4, "lora_alpha": 8}  # fmt: skip
    assert client.post(url, data).status_code == 302
    assert AdaptationJob.objects.get(name="tiny-ru").config["init"] == "zeros"
    refused = client.post(url, {**data, "name": "tiny-ru-2", "init": "projection"})
    assert refused.status_code == 200 and "projection" in refused.content.decode()
    assert not AdaptationJob.objects.filter(name="tiny-ru-2").exists()


def test_the_adapt_form_labels_and_bounds_reach_the_page_in_russian(client, two_models, settings):
    settings.LANGUAGE_CODE = "ru"
    client.force_login(factories.researcher())
    url = reverse("catalog:adapt", args=[two_models[0].pk])
    page = client.get(url, headers={"accept-language": "ru"}).content.decode()
    assert "Размер словаря" in page and "среднее по старым фрагментам" in page
    assert 'min="300"' in page and 'max="262144"' in page
    response = client.post(url, {"name": "x", "vocab_size": 100, "tokenizer_type": "unigram",
                                 "init": "mean", "head": "tied", "train_steps": 1, "batch_size": 1, "seq_len": 32,
                                 "learning_rate": 0.01, "lora_steps": 0, "lora_r": 4,
                                 "lora_alpha": 8})  # fmt: skip
    assert response.status_code == 200 and not AdaptationJob.objects.exists()
