"""Celery tasks: a primary key in, the row re-read, ``adaptation`` called with plain values.

``generate_run`` is idempotent before it is ``acks_late``: it claims its run with a
conditional update, skips questions already answered, and upserts answers keyed on
(run, question) after every batch. A worker killed mid-run loses at most one batch, and the
redelivered task finishes the rest without duplicating anything.
"""

from __future__ import annotations

import logging
import socket
import time
import traceback
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F

from workers.celery import app
from workers.queues import Queue

log = logging.getLogger(__name__)

# Errors worth another attempt: out of memory on a shared GPU, a dropped database link.
TRANSIENT = (ConnectionError, TimeoutError, MemoryError)


def enqueue_generation(run_id: int) -> None:
    """Send the task after the surrounding transaction commits (never for a rolled-back row)."""
    transaction.on_commit(lambda: generate_run.apply_async(args=[run_id], queue=Queue.GPU))


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def generate_run(self, run_id: int) -> str:  # type: ignore[no-untyped-def]
    from adaptation.generate import GeneratedAnswer, GenerationSettings, generate_answers
    from adaptation.modelio import load_model, pick_device
    from sbs.studies import services
    from sbs.studies.models import Answer, GenerationRun
    from sbs.studies.selfid import names_itself

    max_attempts = settings.GENERATION_MAX_ATTEMPTS
    device = pick_device("auto")
    worker = f"{socket.gethostname()}:{self.request.hostname or ''}"
    if not services.run_claim(
        run_id=run_id, worker=worker, device=device, max_attempts=max_attempts
    ):
        return "not claimed"
    run = GenerationRun.objects.select_related("study", "model").get(pk=run_id)
    questions = list(run.study.question_set.questions.order_by("position"))
    done_ids = set(run.answers.values_list("question_id", flat=True))
    skip = frozenset(i for i, q in enumerate(questions) if q.pk in done_ids)
    GenerationRun.objects.filter(pk=run_id).update(
        done_count=len(done_ids), total_count=len(questions)
    )
    gen_settings = GenerationSettings.from_dict(run.study.generation)
    model_names = tuple(n for n in (run.study.model_a.name, run.study.model_b.name) if len(n) >= 5)

    def save_batch(batch: list[GeneratedAnswer]) -> None:
        rows = [
            Answer(
                run_id=run_id,
                question_id=questions[a.index].pk,
                text=a.text,
                prompt_tokens=a.prompt_tokens,
                new_tokens=a.new_tokens,
                seconds=a.seconds,
                tokenize_seconds=a.tokenize_seconds,
                batch_size=a.batch_size,
                stop_reason=a.stop_reason,
                self_identifies=names_itself(a.text, model_names),
            )
            for a in batch
        ]
        with transaction.atomic():
            Answer.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["run", "question"],
                update_fields=[
                    "text",
                    "prompt_tokens",
                    "new_tokens",
                    "seconds",
                    "tokenize_seconds",
                    "batch_size",
                    "stop_reason",
                    "self_identifies",
                ],
            )
            GenerationRun.objects.filter(pk=run_id).update(done_count=run.answers.count())

    try:
        if len(skip) < len(questions):
            started = time.perf_counter()
            loaded = load_model(
                services.model_path(run.model), cache_dir=Path(settings.MODEL_CACHE), device=device
            )
            GenerationRun.objects.filter(pk=run_id).update(
                load_seconds=time.perf_counter() - started
            )
            prompts = [q.text for q in questions]
            for _ in generate_answers(
                loaded, prompts, gen_settings, skip=skip, on_batch=save_batch
            ):
                pass
    except SoftTimeLimitExceeded:
        services.run_fail(run_id=run_id, error="time limit exceeded", final=True)
        return "failed"
    except TRANSIENT as exc:
        attempts = GenerationRun.objects.get(pk=run_id).attempts
        final = attempts >= max_attempts
        services.run_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}", final=final)
        if not final:
            raise self.retry(exc=exc, countdown=10 * attempts) from exc
        return "failed"
    except Exception as exc:  # a bug or a bad model: fail the run with its traceback, no retry
        log.exception("generation run %s failed", run_id)
        services.run_fail(
            run_id=run_id,
            error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=8)}",
            final=True,
        )
        return "failed"
    GenerationRun.objects.filter(pk=run_id).update(done_count=F("total_count"))
    services.run_finish(run_id=run_id)
    return "done"


def enqueue_adaptation(job_id: int) -> None:
    transaction.on_commit(lambda: adapt_model.apply_async(args=[job_id], queue=Queue.GPU))


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True)
def adapt_model(self, job_id: int) -> str:  # type: ignore[no-untyped-def]
    """Run the adaptation pipeline for a job row; finished steps are skipped on redelivery."""
    from adaptation.modelio import pick_device
    from adaptation.pipeline import PipelineConfig, run_pipeline
    from sbs.studies import services
    from sbs.studies.models import AdaptationJob

    device = pick_device("auto")
    if not services.adaptation_claim(
        job_id=job_id, device=device, max_attempts=settings.GENERATION_MAX_ATTEMPTS
    ):
        return "not claimed"
    job = AdaptationJob.objects.select_related("parent", "created_by").get(pk=job_id)
    last = [0.0]

    def progress(step: str, fraction: float, message: str) -> None:
        now = time.monotonic()
        if fraction in (0.0, 1.0) or now - last[0] > 1.0:  # at most one write a second
            last[0] = now
            AdaptationJob.objects.filter(pk=job_id).update(
                step=step, progress=fraction, message=message[:300]
            )

    try:
        result = run_pipeline(
            services.model_path(job.parent),
            Path(settings.MODEL_STORE) / ".work" / f"adapt-{job_id}",
            PipelineConfig.from_dict(job.config),
            cache_dir=Path(settings.MODEL_CACHE),
            device=device,
            on_progress=progress,
        )
        services.adaptation_finish(job=job, model_dir=result.model_dir, summary=result.steps)
    except SoftTimeLimitExceeded:
        services.adaptation_fail(job_id=job_id, error="time limit exceeded")
        return "failed"
    except Exception as exc:
        log.exception("adaptation job %s failed", job_id)
        services.adaptation_fail(
            job_id=job_id, error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=8)}"
        )
        return "failed"
    return "done"
