"""Ensembles of task adapters (UDLM, ``adaptation.ensemble``) as models of the catalog.

A researcher asks for an ensemble of a base model: the job (an :class:`AdaptationJob` with
method ``ensemble``, on the GPU queue, through the one job lifecycle) trains one LoRA adapter
per task, calibrates the training-free gate, scores it against the baselines on the tasks'
held-out items, and installs the saved folder as a child of the base, of kind ``ensemble``.
Workers generate with it like any model (the gate routes every token), so it can be put in a
study and judged side by side.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from sbs.catalog.models import AdaptationJob, ModelEntry
from sbs.catalog.services import (
    _fill_reserved,
    _store_slot,
    child_job_start,
    finished_if_installed,
    model_path,
    reserved_result,
)
from sbs.core import jobs
from sbs.core.errors import ServiceError

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def ensemble_settings(data: dict[str, Any]) -> dict[str, Any]:
    """The job's settings, checked by building the library's configs (a bad value is refused
    before anything is queued): tasks, adapter steps, calibration prompts per task, the gate
    (top-k, granularity, temperature, aggregation) and whether to score the baselines."""
    from adaptation.ensemble import EnsembleConfig
    from adaptation.tasks import BUILDERS, AdapterConfig

    tasks = list(data.get("tasks") or ())
    unknown = [t for t in tasks if t not in BUILDERS]
    if unknown:
        raise ServiceError(_("Unknown task: %(tasks)s.") % {"tasks": ", ".join(unknown)})
    try:
        config, evaluation = library_configs(
            {
                "tasks": tasks,
                "steps": int(data.get("steps", AdapterConfig.steps)),
                "gate": data.get("gate") or {},
                "calibration_items": int(
                    data.get("calibration_items", EnsembleConfig.calibration_items)
                ),
                "max_test_items": int(data.get("max_test_items", 0)),
            }
        )
    except (TypeError, ValueError) as exc:
        raise ServiceError(
            _("These ensemble settings cannot be used: %(error)s") % {"error": exc}
        ) from exc
    if config.adapter.steps < 1:
        raise ServiceError(_("Each adapter needs at least one training step."))
    return {
        "tasks": list(config.tasks),
        "steps": config.adapter.steps,
        "calibration_items": config.calibration_items,
        "gate": asdict(config.gate),
        "evaluate": bool(data.get("evaluate", True)),
        "max_test_items": evaluation.max_test_items,
    }


def library_configs(settings_: dict[str, Any]) -> tuple[Any, Any]:
    """(EnsembleConfig, EvaluationConfig) of a job's checked settings."""
    from adaptation.ensemble import EnsembleConfig, EvaluationConfig, GateConfig
    from adaptation.tasks import AdapterConfig

    return (
        EnsembleConfig(
            tasks=tuple(settings_["tasks"]),
            adapter=AdapterConfig(steps=settings_["steps"]),
            gate=GateConfig.from_dict(settings_["gate"]),
            calibration_items=settings_["calibration_items"],
        ),
        EvaluationConfig(max_test_items=settings_["max_test_items"]),
    )


def ensemble_start(
    *, parent: ModelEntry, name: str, config: dict[str, Any], user: User | None = None
) -> AdaptationJob:
    """Reserve the ensemble's name (a child of ``parent``), create the job, queue it on commit."""
    if not parent.has_own_weights:
        raise ServiceError(
            _("An ensemble is built on a model with files (a folder or a GGUF file).")
        )
    name = name.strip()
    if not name:
        raise ServiceError(_("The ensemble needs a name."))
    return child_job_start(
        parent=parent, name=name, config=ensemble_settings(config), user=user,
        method=AdaptationJob.Method.ENSEMBLE,
    )  # fmt: skip


def _copy_regular(source: Path, dest: Path, digest: Any) -> int:
    if source.is_symlink() or not source.is_file():
        raise RuntimeError(f"{source}: missing or not a regular file in the saved ensemble")
    size = 0
    with source.open("rb") as reader, dest.open("wb") as writer:
        for chunk in iter(lambda: reader.read(1 << 20), b""):
            writer.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    return size


def ensemble_files(folder: Path) -> list[str]:
    """The files of a saved ensemble, relative to it, in a fixed order: its manifest, its
    gate, and each task's peft adapter (config and safetensors weights)."""
    from adaptation.ensemble import ADAPTERS, GATE_FILE, MANIFEST, read_manifest

    tasks = read_manifest(Path(folder))["tasks"]
    return [MANIFEST, GATE_FILE] + [
        f"{ADAPTERS}/{task}/{file}" for task in tasks for file in ADAPTER_FILES
    ]


def install_ensemble(folder: Path, store: Path, slug: str) -> tuple[Path, int, str]:
    """Copy a saved ensemble (the worker's own output) into ``store/slug``: its
    :func:`ensemble_files`, nothing else; (root, bytes, sha256 of the files in that order,
    names included)."""
    folder = Path(folder)
    names = ensemble_files(folder)
    tmp = store / f".{slug}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    digest, total = hashlib.sha256(), 0
    try:
        for name in names:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            digest.update(name.encode() + b"\0")
            total += _copy_regular(folder / name, tmp / name, digest)
        tmp.rename(store / slug)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return store / slug, total, digest.hexdigest()


def ensemble_finish(*, lease: jobs.Lease, folder: Path) -> ModelEntry:
    """Install the saved ensemble into the entry reserved for it, under the job's lease; its
    manifest (tasks, gate, calibration, training, evaluation) becomes the recipe."""
    from adaptation.ensemble import read_manifest

    job = AdaptationJob.objects.select_related("result", "parent").get(pk=lease.pk)
    entry = reserved_result(job)
    manifest = read_manifest(folder)
    summary = {"evaluation": manifest.get("evaluation"), "training": manifest.get("training")}
    if finished_if_installed(lease, entry, summary):
        return entry
    store, slug = _store_slot(job.name)
    root, total, sha256 = install_ensemble(folder, store, slug)
    manifest["base"] = {**(manifest.get("base") or {}), "path": None}  # the parent is the base
    fields = {
        "kind": ModelEntry.Kind.ENSEMBLE,
        "path": str(root.relative_to(store)),
        "architecture": job.parent.architecture,
        "tokenizer_class": job.parent.tokenizer_class,
        "total_bytes": total,
        "sha256": sha256,
    }
    recipe = {"method": "udlm_ensemble", "config": job.config, "ensemble": manifest}
    return _fill_reserved(lease, entry, fields, root, recipe=recipe, summary=summary, step="done")


def base_path(entry: ModelEntry) -> Path | None:
    """Where an ensemble's base model lives (its parent's files); None for other models."""
    if entry.kind != ModelEntry.Kind.ENSEMBLE:
        return None
    if entry.parent is None:
        raise ServiceError(_("The ensemble “%(name)s” has lost its base model.") % {"name": entry})
    return model_path(entry.parent)
