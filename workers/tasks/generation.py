"""``generate_run``: one model's answers to a study's questions, under a lease.

Idempotent before it is ``acks_late``: the run is claimed with a lease and a fencing token,
questions already answered are skipped, and answers are upserted on (run, question) after
every batch, each write fenced. A worker killed mid-run loses at most one batch; a hung one
loses its lease, and when it wakes its writes are refused.
"""

from __future__ import annotations

import time

from django.conf import settings

from sbs.celery import app
from workers.runtime import holding
from workers.tasks.common import fail, load_entry, worker_name


@app.task(
    bind=True, name="workers.tasks.generate_run", acks_late=True, reject_on_worker_lost=True,
    max_retries=None,
)  # fmt: skip
def generate_run(self, run_id: int) -> str:  # type: ignore[no-untyped-def]
    from adaptation.generate import GeneratedAnswer, GenerationSettings, generate_answers
    from adaptation.modelio import pick_device
    from adaptation.speed import SpeedConfig, measure_speed, reference_text
    from sbs.core.jobs import job_progress
    from sbs.studies import services
    from sbs.studies.models import GenerationRun

    max_attempts = settings.GENERATION_MAX_ATTEMPTS
    device = pick_device("auto")
    lease = services.run_claim(
        run_id=run_id, worker=worker_name(self), device=device, max_attempts=max_attempts
    )
    if lease is None:
        return "not claimed"
    run = GenerationRun.objects.select_related("study", "model").get(pk=run_id)
    questions = list(run.study.question_set.questions.order_by("position"))
    done_ids = set(run.answers.values_list("question_id", flat=True))
    skip = frozenset(i for i, q in enumerate(questions) if q.pk in done_ids)
    offsets = services.regeneration_offsets(run=run)
    with holding(lease) as held:
        try:
            job_progress(lease, done_count=len(done_ids), total_count=len(questions))

            def save_batch(batch: list[GeneratedAnswer]) -> None:
                held.check()
                services.answers_upsert(
                    lease=lease,
                    answers=[
                        services.NewAnswer(
                            question_id=questions[a.index].pk,
                            text=a.text,
                            prompt_tokens=a.prompt_tokens,
                            new_tokens=a.new_tokens,
                            seconds=a.seconds,
                            tokenize_seconds=a.tokenize_seconds,
                            batch_size=a.batch_size,
                            stop_reason=a.stop_reason,
                        )  # fmt: skip
                        for a in batch
                    ],
                )

            if len(skip) < len(questions) or run.reference_speed is None:
                started = time.perf_counter()
                loaded = load_entry(run.model, device=device)
                job_progress(lease, load_seconds=time.perf_counter() - started)
                held.check()
            if len(skip) < len(questions):
                for _ in generate_answers(
                    loaded,
                    [q.text for q in questions],
                    GenerationSettings.from_dict(run.study.generation),
                    skip=skip,
                    on_batch=save_batch,
                    seed_offsets={i: offsets.get(q.pk, 0) for i, q in enumerate(questions)},
                ):
                    pass
            if run.reference_speed is None:
                # The controlled measure: the same text for both models of the study, in the
                # process, threads and device that generated the answers, after a warm-up.
                speed = measure_speed(loaded.model, loaded.tokenizer, reference_text(),
                                      SpeedConfig(repeats=3, warmup=1))  # fmt: skip
                job_progress(lease, reference_speed=speed.to_dict())
            held.check()
            services.run_finish(lease=lease)
        except Exception as exc:
            return fail(self, lease, exc, max_attempts=max_attempts)
    return "done"
