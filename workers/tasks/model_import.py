"""``import_model``: register a model from a server path (confined to MODEL_IMPORT_ROOTS),
checked and copied by a worker on the default queue, into the entry reserved for it."""

from __future__ import annotations

from django.conf import settings

from sbs.celery import app
from workers.runtime import holding
from workers.tasks.common import fail, worker_name


@app.task(bind=True, name="workers.tasks.import_model", acks_late=True, reject_on_worker_lost=True)
def import_model(self, job_id: int) -> str:  # type: ignore[no-untyped-def]
    from adaptation.modelfiles import ModelFileError
    from sbs.catalog import services as catalog_services
    from sbs.catalog.models import ModelImportJob
    from sbs.core.jobs import job_claim
    from sbs.studies import services

    max_attempts = settings.GENERATION_MAX_ATTEMPTS
    lease = job_claim(
        ModelImportJob, job_id, worker=worker_name(self), device="cpu", max_attempts=max_attempts
    )
    if lease is None:
        return "not claimed"
    with holding(lease):
        try:
            catalog_services.model_import_run(lease=lease)
        except (ModelFileError, services.ServiceError) as exc:  # refused: say why, free the name
            catalog_services.model_import_refused(lease=lease, exc=exc)
            return "refused"
        except Exception as exc:
            return fail(self, lease, exc, max_attempts=max_attempts)
    return "done"
