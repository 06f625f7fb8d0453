"""Writes for question sets, benchmarks and benchmark runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from adaptation.benchmarks import SHIPPED_SETS, MCItem, content_sha256
from sbs.catalog.models import ModelEntry
from sbs.core import jobs
from sbs.core.errors import ServiceError
from sbs.questions import importers, selectors
from sbs.questions.models import (
    Benchmark,
    BenchmarkItem,
    BenchmarkResult,
    BenchmarkRun,
    PromptFormat,
    Question,
    QuestionSet,
)

__all__ = ["ServiceError"]


@transaction.atomic
def question_set_import(
    *, name: str, data: bytes, filename: str, user: User | None = None, language: str = "ru"
) -> QuestionSet:
    """Validate the whole file, then write the set and its questions in one transaction."""
    name = name.strip()
    if not name:
        raise ServiceError(_("The question set needs a name."))
    parsed = importers.parse_questions(data, importers.detect_format(filename))
    if QuestionSet.objects.filter(name=name).exists():
        raise ServiceError(_("A question set named “%(name)s” already exists.") % {"name": name})
    qset = QuestionSet.objects.create(
        name=name, language=language, sha256=importers.content_sha256(parsed), created_by=user
    )
    Question.objects.bulk_create(
        Question(
            question_set=qset,
            external_id=q.external_id,
            text=q.text,
            category=q.category,
            reference=q.reference,
            position=i,
        )
        for i, q in enumerate(parsed)
    )
    return qset


# ------------------------------------------------------------------------------ benchmarks


def _benchmark_write(
    *,
    name: str,
    items: Sequence[MCItem],
    user: User | None,
    language: str,
    source: str,
    license: str,
) -> Benchmark:
    name = name.strip()
    if not name:
        raise ServiceError(_("The benchmark needs a name."))
    if Benchmark.objects.filter(name=name).exists():
        raise ServiceError(_("A benchmark named “%(name)s” already exists.") % {"name": name})
    benchmark = Benchmark.objects.create(
        name=name, language=language, source=source[:300], license=license[:100],
        sha256=content_sha256(items), created_by=user,
    )  # fmt: skip
    BenchmarkItem.objects.bulk_create(
        (
            BenchmarkItem(
                benchmark=benchmark,
                external_id=item.id,
                position=k,
                category=item.category,
                context=item.context,
                question=item.question,
                choices=list(item.choices),
                answer=item.answer,
            )  # fmt: skip
            for k, item in enumerate(items)
        ),
        batch_size=2000,
    )
    return benchmark


@transaction.atomic
def benchmark_import(
    *, name: str, data: bytes, filename: str, user: User | None = None, language: str = "ru"
) -> Benchmark:
    """Validate the whole file (every problem with its line), then write the benchmark and
    its items in one transaction: nothing is half-written."""
    if not name.strip():
        raise ServiceError(_("The benchmark needs a name."))
    items = importers.parse_benchmark(data, importers.detect_format(filename))
    return _benchmark_write(
        name=name, items=items, user=user, language=language, source=filename, license=""
    )


@transaction.atomic
def benchmark_import_shipped(*, key: str, name: str = "", user: User | None = None) -> Benchmark:
    """Import a set shipped on PyPI or in ``data/`` (``adaptation.benchmarks.SHIPPED_SETS``)."""
    shipped = SHIPPED_SETS.get(key)
    if shipped is None:
        raise ServiceError(_("Unknown benchmark “%(key)s”.") % {"key": key})
    try:
        items = shipped.load()
    except FileNotFoundError as exc:
        raise ServiceError(str(exc)) from exc
    return _benchmark_write(
        name=name or key, items=items, user=user, language=shipped.language,
        source=f"{key}: {shipped.source}", license=shipped.license,
    )  # fmt: skip


def benchmark_run_start(
    *,
    model: ModelEntry,
    benchmark: Benchmark,
    prompt_format: str = PromptFormat.CLOZE,
    user: User | None = None,
) -> BenchmarkRun:
    """The run of ``model`` on ``benchmark`` in ``prompt_format``: created and sent to the
    GPU queue (after commit) when new, sent again when it failed, else returned as it is
    (one run per model, benchmark and format; a finished run is not computed twice)."""
    if prompt_format not in PromptFormat.values:
        raise ServiceError(_("Unknown prompt format “%(f)s”.") % {"f": prompt_format})
    if not model.ready:
        raise ServiceError(_("The model “%(name)s” is not installed yet.") % {"name": model})
    if model.is_imported:
        raise ServiceError(
            _("“%(name)s” is known by its imported answers alone: there is no model to score.")
            % {"name": model}
        )
    with transaction.atomic():
        run, created = BenchmarkRun.objects.get_or_create(
            model=model, benchmark=benchmark, prompt_format=prompt_format,
            defaults={"created_by": user, "total_count": benchmark.items.count()},
        )  # fmt: skip
        if created:
            jobs.enqueue(run)
            return run
    if run.status == BenchmarkRun.Status.FAILED:
        jobs.job_retry(run)
        run.refresh_from_db()
    return run


def benchmark_runs_start(
    *,
    models: Sequence[ModelEntry],
    benchmarks: Sequence[Benchmark],
    prompt_format: str = PromptFormat.CLOZE,
    user: User | None = None,
) -> list[BenchmarkRun]:
    """:func:`benchmark_run_start` for every model and benchmark."""
    return [
        benchmark_run_start(model=m, benchmark=b, prompt_format=prompt_format, user=user)
        for m in models
        for b in benchmarks
    ]


def benchmark_run_claim(
    *, run_id: int, worker: str, device: str, max_attempts: int
) -> jobs.Lease | None:
    return jobs.job_claim(
        BenchmarkRun, run_id, worker=worker, device=device, max_attempts=max_attempts
    )


@dataclass(frozen=True)
class NewResult:
    item_id: int
    logprobs: list[float]
    tokens: list[int]
    chars: list[int]
    predicted: int
    predicted_norm: int
    answer: int


def benchmark_results_upsert(*, lease: jobs.Lease, results: Sequence[NewResult]) -> int:
    """Store a chunk of item results, upserted on (run, item), and the run's progress, in
    one fenced transaction (a worker whose lease was taken over writes nothing)."""
    with lease.guard():
        BenchmarkResult.objects.bulk_create(
            [
                BenchmarkResult(
                    run_id=lease.pk,
                    item_id=r.item_id,
                    logprobs=r.logprobs,
                    tokens=r.tokens,
                    chars=r.chars,
                    predicted=r.predicted,
                    predicted_norm=r.predicted_norm,
                    correct=r.predicted == r.answer,
                    correct_norm=r.predicted_norm == r.answer,
                )  # fmt: skip
                for r in results
            ],
            update_conflicts=True,
            unique_fields=["run", "item"],
            update_fields=[
                "logprobs",
                "tokens",
                "chars",
                "predicted",
                "predicted_norm",
                "correct",
                "correct_norm",
            ],  # fmt: skip
        )
        done = BenchmarkResult.objects.filter(run_id=lease.pk).count()
        lease.update(done_count=done)
    return done


def benchmark_run_finish(*, lease: jobs.Lease, score_seconds: float | None = None) -> None:
    """Finish the run with its summary (acc, acc_norm overall and by category), computed
    from the stored results."""
    with lease.guard():
        run = BenchmarkRun.objects.get(pk=lease.pk)
        summary = selectors.run_summary(run)
        fields: dict[str, Any] = {"summary": summary, "done_count": summary["n"]}
        if score_seconds is not None:
            fields["score_seconds"] = score_seconds
        jobs.job_finish(lease, **fields)
