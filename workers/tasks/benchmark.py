"""``run_benchmark``: one model scored on one multiple-choice benchmark, under a lease.

Idempotent before it is ``acks_late``: the run is claimed with a lease and a fencing token,
items already scored are skipped, and each chunk of results is upserted on (run, item) with
the progress in one fenced write. A worker killed mid-run loses at most one chunk; a hung one
loses its lease, and when it wakes its writes are refused.
"""

from __future__ import annotations

import time

from django.conf import settings

from sbs.celery import app
from workers.runtime import holding
from workers.tasks.common import fail, load_entry, worker_name

CHUNK_ITEMS = 64  # items scored between two writes
BATCH_SIZE = 16  # sequences per forward pass


@app.task(
    bind=True,
    name="workers.tasks.run_benchmark",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def run_benchmark(self, run_id: int) -> str:  # type: ignore[no-untyped-def]
    from adaptation.benchmarks import MCItem, heldout_texts
    from adaptation.modelio import pick_device
    from adaptation.scoring import ChoiceConfig, bits_per_text, iter_choice_scores
    from sbs.core.jobs import job_progress
    from sbs.questions import services
    from sbs.questions.models import BenchmarkRun

    max_attempts = settings.GENERATION_MAX_ATTEMPTS
    device = pick_device("auto")
    lease = services.benchmark_run_claim(
        run_id=run_id, worker=worker_name(self), device=device, max_attempts=max_attempts
    )
    if lease is None:
        return "not claimed"
    run = BenchmarkRun.objects.select_related("benchmark", "model").get(pk=run_id)
    rows = list(run.benchmark.items.order_by("position"))
    done_ids = set(run.results.values_list("item_id", flat=True))
    skip = frozenset(k for k, row in enumerate(rows) if row.pk in done_ids)
    items = [
        MCItem(
            question=r.question,
            choices=tuple(r.choices),
            answer=r.answer,
            id=r.external_id,
            category=r.category,
            context=r.context,
        )
        for r in rows
    ]
    config = ChoiceConfig(
        prompt_format=run.prompt_format,  # type: ignore[arg-type]
        language=run.benchmark.language,
        batch_size=BATCH_SIZE,
    )
    with holding(lease) as held:
        try:
            job_progress(lease, done_count=len(done_ids), total_count=len(rows), progress=0.0)
            seconds = None
            if len(skip) < len(rows) or run.text_bits is None:
                started = time.perf_counter()
                loaded = load_entry(run.model, device=device)
                job_progress(lease, load_seconds=time.perf_counter() - started)
                held.check()
            if len(skip) < len(rows):
                started = time.perf_counter()
                for chunk in iter_choice_scores(
                    loaded.model, loaded.tokenizer, items, config, chunk=CHUNK_ITEMS, skip=skip
                ):
                    held.check()
                    done = services.benchmark_results_upsert(
                        lease=lease,
                        results=[
                            services.NewResult(
                                item_id=rows[k].pk,
                                logprobs=list(s.logprobs),
                                tokens=list(s.tokens),
                                chars=list(s.chars),
                                predicted=s.predicted,
                                predicted_norm=s.predicted_norm,
                                answer=s.answer,
                            )
                            for k, s in chunk
                        ],
                    )
                    job_progress(lease, progress=done / max(len(rows), 1))
                seconds = time.perf_counter() - started
            if run.text_bits is None:
                # Bits per character on the shipped held-out texts, paragraph by paragraph
                # (a paired bootstrap over paragraphs needs them apart): for small models the
                # signal that moves when multiple-choice accuracy sits at chance.
                text_bits = {}
                for category, texts in heldout_texts().items():
                    scored = bits_per_text(loaded.model, loaded.tokenizer, texts)
                    text_bits[category] = {"chars": [r.chars for r in scored],
                                           "bits": [r.bits for r in scored]}  # fmt: skip
                    held.check()
                job_progress(lease, text_bits=text_bits)
            held.check()
            services.benchmark_run_finish(lease=lease, score_seconds=seconds)
        except Exception as exc:
            return fail(self, lease, exc, max_attempts=max_attempts)
    return "done"
