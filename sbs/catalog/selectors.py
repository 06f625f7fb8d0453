"""Reads for the model pages."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from sbs.catalog.models import AdaptationJob, ModelEntry, ModelImportJob
from sbs.core.formats import decimal


def models_ready() -> QuerySet[ModelEntry]:
    return ModelEntry.objects.ready().select_related("parent")


def recent_adaptations(limit: int = 50) -> list[AdaptationJob]:
    return list(AdaptationJob.objects.select_related("parent", "result")[:limit])


def recent_imports(limit: int = 50) -> list[ModelImportJob]:
    return list(ModelImportJob.objects.select_related("parent")[:limit])


def _mean_tail(values: list[float], n: int = 5) -> float | None:
    tail = [float(v) for v in values[-n:]]
    return sum(tail) / len(tail) if tail else None


def recipe_facts(recipe: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """What an adaptation recipe records, as (step, label, value) rows a person reads: the
    corpus and its templates, the tokenizer's fertility, the head chosen, training, φ."""
    steps = (recipe or {}).get("steps") or {}
    rows: list[tuple[str, str, Any]] = []
    corpus = steps.get("corpus") or {}
    if corpus:
        rows.append(("corpus", _("training lines / held-out lines"),
                     f"{corpus.get('train_lines')} / {corpus.get('heldout_lines')}"))  # fmt: skip
        dedup = corpus.get("dedup") or {}
        if dedup:
            rows.append(("corpus", _("template lines dropped"), dedup.get("dropped")))
            rows.append(("corpus", _("held-out lines sharing half their 6-grams with training, %"),
                         decimal(100 * dedup.get("heldout_overlap", 0.0), 1)))  # fmt: skip
    tokenizer = steps.get("tokenizer") or {}
    if tokenizer:
        rows.append(("tokenizer", _("vocabulary"),
                     f"{tokenizer.get('type')} {tokenizer.get('vocab_size')}"))  # fmt: skip
        fert = tokenizer.get("fertility") or {}
        if fert:
            rows.append(("tokenizer", _("tokens per word on general prose, original → new"),
                         f"{decimal(fert['original']['tokens_per_word'], 2)} → "
                         f"{decimal(fert['new']['tokens_per_word'], 2)}"))  # fmt: skip
    swap = steps.get("swap") or {}
    if swap:
        rows.append(("swap", _("new rows initialised by"), swap.get("init")))
        head = swap.get("head") or {}
        if head:
            measured = ", ".join(f"{k} {decimal(v, 3)}" for k, v in (head.get("bpc") or {}).items())
            rows.append(("swap", _("output head (held-out bits per character)"),
                         f"{head.get('chosen')}" + (f" ({measured})" if measured else "")))  # fmt: skip
    for name in ("train", "lora"):
        step = steps.get(name) or {}
        if step:
            loss = _mean_tail(step.get("losses") or [])
            rows.append((name, _("steps, mean loss of the last five"),
                         f"{step.get('steps')}; {decimal(loss, 3)}" if loss is not None
                         else step.get("steps")))  # fmt: skip
    merge = steps.get("merge") or {}
    if merge:
        rows.append(("merge", _("merging factor φ chosen (rule)"),
                     f"{decimal(merge.get('best_phi') or 0.0, 3)} ({merge.get('select_by')})"))  # fmt: skip
    return rows
