"""Jobs that make a child model: the reserved entry has the kind the method makes, also
when a requeue reserves it again, and a model installed by a dead attempt is not installed
twice."""

from __future__ import annotations

import pytest

from sbs.catalog import services
from sbs.catalog.models import AdaptationJob, ModelEntry
from sbs.core.jobs import JobStatus

pytestmark = pytest.mark.django_db


def _parent() -> ModelEntry:
    return ModelEntry.objects.create(name="base", kind="hf_folder", path="base", sha256="0" * 64)


@pytest.mark.parametrize(
    "method,kind",
    [(AdaptationJob.Method.RUSSIAN, ModelEntry.Kind.HF_FOLDER),
     (AdaptationJob.Method.ENSEMBLE, ModelEntry.Kind.ENSEMBLE)],
)  # fmt: skip
def test_the_reserved_entry_has_the_kind_of_the_method_again_after_a_requeue(method, kind):
    job = services.child_job_start(
        parent=_parent(), name="child", config={}, user=None, method=method
    )
    assert job.result.kind == kind and not job.result.ready
    job.result.delete()  # the reservation went (an admin cleaned up)
    job.refresh_from_db()
    services.adaptation_requeue(job=job)
    job.refresh_from_db()
    assert job.result is not None and job.result.kind == kind and job.result.name == "child"
    assert job.status == JobStatus.PENDING


def test_a_model_installed_by_a_dead_attempt_finishes_the_job_without_installing_again():
    job = services.child_job_start(parent=_parent(), name="child", config={}, user=None)
    lease = services.adaptation_claim(job_id=job.pk, worker="w", device="cpu", max_attempts=3)
    assert lease is not None
    entry = services.reserved_result(AdaptationJob.objects.get(pk=job.pk))
    assert not services.finished_if_installed(lease, entry, {"loss": 1.0})
    ModelEntry.objects.filter(pk=entry.pk).update(ready=True, path="child", sha256="1" * 64)
    entry.refresh_from_db()
    assert services.finished_if_installed(lease, entry, {"loss": 1.0})
    job.refresh_from_db()
    assert (job.status, job.summary, job.step) == (JobStatus.DONE, {"loss": 1.0}, "done")
