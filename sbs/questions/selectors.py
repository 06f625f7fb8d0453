"""Reads for the question-set and benchmark pages, and the benchmark results a report reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from django.db.models import Count, QuerySet

from sbs.catalog.models import ModelEntry
from sbs.questions.models import Benchmark, BenchmarkResult, BenchmarkRun, QuestionSet


def question_sets_with_counts() -> QuerySet[QuestionSet]:
    return QuestionSet.objects.annotate(n=Count("questions"))


def systems_answering(question_set: QuestionSet) -> QuerySet[ModelEntry]:
    """The systems with imported answers to this set, each with ``n`` (its answers here)."""
    return (
        ModelEntry.objects.filter(imported_answers__question__question_set=question_set)
        .annotate(n=Count("imported_answers"))
        .order_by("name")
    )


def benchmarks_with_counts() -> QuerySet[Benchmark]:
    return Benchmark.objects.annotate(n=Count("items"))


def benchmark_categories(benchmark: Benchmark) -> list[dict[str, Any]]:
    """Each category of a benchmark with its number of items, by name."""
    rows = benchmark.items.values("category").annotate(n=Count("id")).order_by("category")
    return [{"category": r["category"], "n": r["n"]} for r in rows]


def run_summary(run: BenchmarkRun) -> dict[str, Any]:
    """acc and acc_norm of a run's stored results, overall and by category (by name)."""
    rows = list(
        BenchmarkResult.objects.filter(run=run).values_list(
            "item__category", "correct", "correct_norm"
        )
    )

    def part(chosen: list[tuple[str, bool, bool]]) -> dict[str, Any]:
        n = len(chosen)
        return {
            "n": n,
            "acc": sum(r[1] for r in chosen) / n if n else None,
            "acc_norm": sum(r[2] for r in chosen) / n if n else None,
        }

    categories = sorted({r[0] for r in rows})
    return {
        **part(rows),
        "categories": {c: part([r for r in rows if r[0] == c]) for c in categories},
    }


def runs_for_models(models: Sequence[ModelEntry]) -> QuerySet[BenchmarkRun]:
    return (
        BenchmarkRun.objects.filter(model__in=models)
        .select_related("benchmark", "model")
        .order_by("benchmark__name", "prompt_format", "model__name")
    )


def _paired_runs(
    original: ModelEntry, adapted: ModelEntry
) -> list[tuple[BenchmarkRun, BenchmarkRun]]:
    """(original's run, adapted's run) of every benchmark and format both finished, by
    benchmark name and format."""
    done = BenchmarkRun.objects.filter(
        model__in=[original, adapted], status=BenchmarkRun.Status.DONE
    ).select_related("benchmark")
    by_key: dict[tuple[int, str], dict[int, BenchmarkRun]] = {}
    for run in done:
        by_key.setdefault((run.benchmark_id, run.prompt_format), {})[run.model_id] = run
    pairs = [
        (runs[original.pk], runs[adapted.pk])
        for runs in by_key.values()
        if original.pk in runs and adapted.pk in runs
    ]
    return sorted(pairs, key=lambda p: (p[0].benchmark.name, p[0].prompt_format))


def text_bpc_inputs(original: ModelEntry, adapted: ModelEntry) -> dict[str, dict[str, Any]]:
    """Per held-out text category, each paragraph's characters and both models' bits, from
    the first pair of finished runs that scored the texts (the report's text section)."""
    for run_a, run_b in _paired_runs(original, adapted):
        a, b = run_a.text_bits, run_b.text_bits
        if not a or not b:
            continue
        return {
            category: {
                "chars": a[category]["chars"],
                "original": a[category]["bits"],
                "adapted": b[category]["bits"],
            }  # fmt: skip
            for category in sorted(set(a) & set(b))
            if a[category]["chars"] == b[category]["chars"]
        }
    return {}


def benchmark_fingerprint(original: ModelEntry, adapted: ModelEntry) -> str:
    """A short hash of the finished runs both models have on the same benchmarks ("" when
    none): a cached report is current only while they are the same."""
    pairs = _paired_runs(original, adapted)
    if not pairs:
        return ""
    facts = [
        [run.pk, run.done_count, run.finished_at.isoformat() if run.finished_at else None]
        for pair in pairs
        for run in pair
    ]
    text = json.dumps(facts, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _longest(choices: Sequence[str]) -> int:
    """Index of the longest choice in characters (the first of equals)."""
    return max(range(len(choices)), key=lambda k: len(choices[k]))


def forgetting_inputs(original: ModelEntry, adapted: ModelEntry) -> list[dict[str, Any]]:
    """Per benchmark and format that both models finished, the items both scored (in the
    benchmark's order) as plain lists: category, number of choices, gold index, index of
    the longest choice, and each model's correct / correct_norm. What the forgetting
    section of the report reads (:mod:`sbs.analysis.stats.forgetting`)."""
    out = []
    for run_a, run_b in _paired_runs(original, adapted):
        marks = {}
        for run in (run_a, run_b):
            marks[run.pk] = {
                item: (bool(c), bool(cn))
                for item, c, cn in BenchmarkResult.objects.filter(run=run).values_list(
                    "item_id", "correct", "correct_norm"
                )
            }
        rows = [
            row
            for row in run_a.benchmark.items.order_by("position").values_list(
                "pk", "category", "choices", "answer"
            )
            if row[0] in marks[run_a.pk] and row[0] in marks[run_b.pk]
        ]
        out.append(
            {
                "benchmark": run_a.benchmark.name,
                "prompt_format": run_a.prompt_format,
                "language": run_a.benchmark.language,
                "category": [r[1] for r in rows],
                "n_choices": [len(r[2]) for r in rows],
                "answer": [r[3] for r in rows],
                "longest": [_longest(r[2]) for r in rows],
                "original": {
                    "correct": [marks[run_a.pk][r[0]][0] for r in rows],
                    "correct_norm": [marks[run_a.pk][r[0]][1] for r in rows],
                },
                "adapted": {
                    "correct": [marks[run_b.pk][r[0]][0] for r in rows],
                    "correct_norm": [marks[run_b.pk][r[0]][1] for r in rows],
                },
            }
        )
    return out
