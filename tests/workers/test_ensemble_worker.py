"""An ensemble of task adapters built from the researcher's page by a real worker, then
compared with its base in a study whose answers the worker generates through the gate."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.urls import reverse

from sbs.catalog import ensembles
from sbs.catalog.models import AdaptationJob, ModelEntry
from sbs.core.errors import ServiceError
from sbs.studies import services
from sbs.studies.models import Answer, GenerationRun, Study
from sbs.voting.models import Vote
from tests import factories
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(420)]


def _settled(row: AdaptationJob | GenerationRun) -> bool:
    row.refresh_from_db()
    return row.status in (row.Status.DONE, row.Status.FAILED)


def test_an_ensemble_is_built_on_the_page_and_judged_in_a_study(client, two_models, worker):
    base = two_models[0]
    client.force_login(factories.researcher())
    page = client.get(reverse("catalog:ensemble", args=[base.pk]))
    assert page.status_code == 200 and f"{base.name}-ensemble" in page.content.decode()
    response = client.post(
        reverse("catalog:ensemble", args=[base.pk]),
        {"name": "tiny-udlm", "tasks": ["arithmetic", "case"], "steps": 2,
         "calibration_items": 3, "top_k": 1, "granularity": "sequence", "temperature": 1.0,
         "aggregation": "mean", "evaluate": "on", "max_test_items": 4},
    )  # fmt: skip
    assert response.status_code == 302
    job = AdaptationJob.objects.get(name="tiny-udlm")
    assert job.method == AdaptationJob.Method.ENSEMBLE
    wait_for(lambda: _settled(job), 300, "the ensemble job", worker.log)
    assert job.status == AdaptationJob.Status.DONE, job.error

    entry = ModelEntry.objects.get(name="tiny-udlm")
    assert entry.kind == ModelEntry.Kind.ENSEMBLE and entry.parent_id == base.pk
    assert entry.ready and len(entry.sha256) == 64 and entry.total_bytes > 0
    manifest = entry.recipe["ensemble"]
    assert manifest["tasks"] == ["arithmetic", "case"]
    assert manifest["gate"]["top_k"] == 1 and manifest["calibration_items"]["case"] == 3
    assert manifest["base"]["path"] is None  # its base is its parent, wherever that lives
    detail = client.get(reverse("catalog:detail", args=[entry.pk])).content.decode()
    assert 'id="ensemble-scores"' in detail and "UDLM top-1" in detail and "oracle" in detail

    archive = b"".join(client.get(reverse("catalog:download", args=[entry.pk])).streaming_content)  # type: ignore[attr-defined]
    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert "tiny-udlm/gate.safetensors" in names
    assert "tiny-udlm/adapters/case/adapter_model.safetensors" in names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)

    # Loaded as the workers load it: the base from its parent, the gate attached.
    from adaptation.ensemble import attached_ensemble
    from workers.tasks.common import load_entry

    loaded = load_entry(entry, device="cpu")
    ensemble = attached_ensemble(loaded.model)
    assert ensemble is not None and ensemble.tasks == ("arithmetic", "case")

    owner = factories.researcher("owner")
    study = services.study_create(
        owner=owner, name="base vs ensemble", question_set=factories.question_set(3),
        model_a=base, model_b=entry, generation={"max_new_tokens": 6, "batch_size": 2},
    )  # fmt: skip
    services.study_start(study=study)
    for run in GenerationRun.objects.filter(study=study):
        wait_for(lambda run=run: _settled(run), 240, f"the run of {run.model}", worker.log)
        assert run.status == GenerationRun.Status.DONE, run.error

    def opened() -> bool:  # the last run's worker opens the study just after finishing it
        study.refresh_from_db()
        return study.status == Study.Status.OPEN

    wait_for(opened, 30, "the study to open", worker.log)
    made = Answer.objects.filter(run__study=study, run__model=entry)
    assert made.count() == 3 and all(a.new_tokens and a.new_tokens > 0 for a in made)

    # An annotator judges the ensemble against its base on the vote page, blind to both.
    from tests.voting.test_vote_flow import _vote_form

    annotator = factories.annotator("judge")
    services.study_add_annotators(study=study, users=[annotator])
    client.force_login(annotator)
    for _ in range(3):
        html, form = _vote_form(client, study)
        assert entry.name not in html and base.name not in html
        response = client.post(reverse("voting:vote", args=[study.pk]), {**form, "choice": "left"})
        assert response.status_code == 302
    assert Vote.objects.filter(assignment__pair__study=study).count() == 3


def test_an_ensemble_needs_a_base_with_weights_and_two_known_tasks(two_models):
    base = two_models[0]
    with pytest.raises(ServiceError, match="Unknown task"):
        ensembles.ensemble_start(parent=base, name="x", config={"tasks": ["wsd", "nope"]})
    with pytest.raises(ServiceError, match="cannot be used"):
        ensembles.ensemble_start(parent=base, name="x", config={"tasks": ["wsd"]})
    with pytest.raises(ServiceError, match="cannot be used"):
        ensembles.ensemble_start(
            parent=base, name="x", config={"tasks": ["wsd", "case"], "gate": {"top_k": -1}}
        )
    assert not AdaptationJob.objects.exists() and not ModelEntry.objects.filter(name="x").exists()
