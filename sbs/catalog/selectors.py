"""Reads for the model pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db.models import Count, QuerySet
from django.utils.translation import gettext as _

from sbs.catalog.models import AdaptationJob, ModelEntry, ModelImportJob
from sbs.core.formats import decimal


def models_ready() -> QuerySet[ModelEntry]:
    return ModelEntry.objects.ready().select_related("parent")


def imported_answer_sets(entry: ModelEntry) -> list[dict[str, Any]]:
    """Per question set a system answered: its answers, and how many recorded token counts
    and seconds (what the speed table can use)."""
    rows = (
        entry.imported_answers.values("question__question_set", "question__question_set__name")
        .annotate(
            answers=Count("pk"),
            with_tokens=Count("new_tokens"),
            with_seconds=Count("seconds"),
        )
        .order_by("question__question_set__name")
    )
    return [
        {
            "question_set_id": r["question__question_set"],
            "question_set": r["question__question_set__name"],
            "answers": r["answers"],
            "with_tokens": r["with_tokens"],
            "with_seconds": r["with_seconds"],
        }
        for r in rows
    ]


def _share(value: float | None) -> str:
    return "—" if value is None or value != value else decimal(value, 2)


def ensemble_facts(entry: ModelEntry) -> dict[str, Any] | None:
    """What an ensemble's page shows: its tasks, gate settings, calibration sample, adapter
    losses, and the evaluation table (exact match % with a 95 % Wilson interval per method
    and task, items per task, the gate's weight on the right adapter); None for other models."""
    if entry.kind != ModelEntry.Kind.ENSEMBLE:
        return None
    from adaptation.ensemble import EnsembleReport

    manifest = (entry.recipe or {}).get("ensemble") or {}
    tasks = list(manifest.get("tasks") or [])
    facts: dict[str, Any] = {
        "tasks": tasks,
        "gate": manifest.get("gate") or {},
        "calibration_items": manifest.get("calibration_items") or {},
        "losses": ((manifest.get("training") or {}).get("losses")) or {},
        "rows": [],
    }
    evaluation = manifest.get("evaluation")
    if evaluation:
        known = set(EnsembleReport.__dataclass_fields__)
        report = EnsembleReport(**{k: v for k, v in evaluation.items() if k in known})
        facts["test_items"] = [report.test_items.get(t) for t in report.tasks]
        facts["eval_tasks"] = report.tasks
        facts["rows"] = [
            (method, [report.cell(method, t) for t in report.tasks]) for method in report.scores
        ]
        facts["routing"] = [
            (method, [_share(report.routing[method].get(t)) for t in report.tasks])
            for method in report.routing
        ]
    return facts


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


def made_by_the_tool(entry: ModelEntry) -> bool:
    """The model is the result of an adaptation job (not registered by hand)."""
    return AdaptationJob.objects.filter(result=entry).exists()


def download_files(entry: ModelEntry, *, adapter: bool = False) -> list[tuple[str, Path]] | None:
    """(name in the archive, file) of a ready model's files, or of its LoRA adapter when
    ``adapter``; None when there is none. Top-level regular files only: the model's own
    files, not the ``adapter/`` folder beside them, no links, no hidden files."""
    from adaptation.export import ADAPTER, ADAPTER_FILES
    from sbs.catalog.services import model_path

    if entry.is_imported:
        return None
    root = model_path(entry)
    if entry.kind == ModelEntry.Kind.ENSEMBLE:  # its adapters are the model: all of them
        from sbs.catalog.ensembles import ensemble_files

        if adapter or not root.is_dir():
            return None
        files = [(name, root / name) for name in ensemble_files(root)]
        return files if all(p.is_file() and not p.is_symlink() for _, p in files) else None
    if adapter:
        root = root / ADAPTER
        if not (root / ADAPTER_FILES[0]).is_file():
            return None
    if root.is_file() and not root.is_symlink():
        return [(root.name, root)]
    if not root.is_dir():
        return None
    files = [(p.name, p) for p in sorted(root.iterdir())
             if p.is_file() and not p.is_symlink() and not p.name.startswith(".")]  # fmt: skip
    return files or None
