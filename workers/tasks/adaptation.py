"""``adapt_model``: the job that makes a child of a model, under a lease: the adaptation
pipeline (the steps an earlier attempt finished are skipped), or an ensemble of task
adapters (adapters trained with the same settings are reused)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from sbs.celery import app
from workers.runtime import holding
from workers.tasks.common import fail, worker_name


@app.task(bind=True, name="workers.tasks.adapt_model", acks_late=True, reject_on_worker_lost=True)
def adapt_model(self, job_id: int) -> str:  # type: ignore[no-untyped-def]
    from adaptation.modelio import pick_device
    from adaptation.pipeline import PipelineConfig, run_pipeline
    from sbs.catalog import services as catalog_services
    from sbs.catalog.models import AdaptationJob
    from sbs.core.jobs import job_progress

    max_attempts = settings.GENERATION_MAX_ATTEMPTS
    device = pick_device("auto")
    lease = catalog_services.adaptation_claim(
        job_id=job_id, worker=worker_name(self), device=device, max_attempts=max_attempts
    )
    if lease is None:
        return "not claimed"
    job = AdaptationJob.objects.select_related("parent").get(pk=job_id)
    last = [0.0]
    with holding(lease) as held:

        def progress(step: str, fraction: float, message: str) -> None:
            held.check()  # a lost lease stops the pipeline at its next report
            now = time.monotonic()
            if fraction in (0.0, 1.0) or now - last[0] > 1.0:  # at most one write a second
                last[0] = now
                job_progress(lease, step=step, progress=fraction, message=message[:300])

        try:
            if job.method == AdaptationJob.Method.ENSEMBLE:
                _build_ensemble(job, lease, device, progress)
                return "done"
            result = run_pipeline(
                catalog_services.model_path(job.parent),
                Path(settings.MODEL_STORE) / ".work" / f"adapt-{job_id}",
                PipelineConfig.from_dict(job.config),
                cache_dir=Path(settings.MODEL_CACHE),
                device=device,
                on_progress=progress,
                clean=not settings.ADAPTATION_KEEP_WORK,
            )
            held.check()
            catalog_services.adaptation_finish(
                lease=lease, model_dir=result.model_dir, summary=result.steps
            )
        except Exception as exc:
            return fail(self, lease, exc, max_attempts=max_attempts)
    return "done"


def _build_ensemble(job: Any, lease: Any, device: str, progress: Any) -> None:
    """Train the task adapters and calibrate the gate (``calibrate_folder``), score it
    against the baselines when asked (``evaluate_folder``), install it as the job's result."""
    from adaptation.ensemble import calibrate_folder, evaluate_folder
    from sbs.catalog import ensembles
    from sbs.catalog import services as catalog_services

    ensemble_config, evaluation_config = ensembles.library_configs(job.config)
    work = Path(settings.MODEL_STORE) / ".work" / f"ensemble-{job.pk}"
    base = catalog_services.model_path(job.parent)
    cache = Path(settings.MODEL_CACHE)
    evaluate = bool(job.config.get("evaluate"))

    def step(name: str, share: float) -> Any:
        return lambda message: progress(name, share, message)

    folder = calibrate_folder(base, work / "ensemble", ensemble_config, cache_dir=cache,
                              device=device, on_progress=step("calibrate", 0.1))  # fmt: skip
    if evaluate:
        progress("evaluate", 0.6, "scoring the ensemble and the baselines")
        evaluate_folder(folder, evaluation_config, base_path=base, cache_dir=cache,
                        device=device, on_progress=step("evaluate", 0.7))  # fmt: skip
    ensembles.ensemble_finish(lease=lease, folder=folder)
    if not settings.ADAPTATION_KEEP_WORK:
        shutil.rmtree(work, ignore_errors=True)
