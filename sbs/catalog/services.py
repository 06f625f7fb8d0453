"""Writes for the model catalog: registering, importing and adapting models."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from adaptation import modelfiles
from sbs.catalog.messages import TranslatableError, message_of
from sbs.catalog.models import RESULT_KINDS, AdaptationJob, ModelEntry, ModelImportJob
from sbs.core import jobs
from sbs.core.errors import ServiceError

__all__ = ["ServiceError"]


def model_register(
    *,
    name: str,
    source: Path | None = None,
    server_path: str | None = None,
    user: User | None = None,
    parent: ModelEntry | None = None,
    recipe: dict[str, Any] | None = None,
) -> ModelEntry:
    """Check the files (no pickles, no code), copy them into MODEL_STORE, add the entry.

    Give exactly one of ``source``, a path this program chose (an upload it staged, a worker's
    output, a shipped model), or ``server_path``, a path a person typed: that one must lie
    under MODEL_IMPORT_ROOTS and is read without following links
    (:func:`modelfiles.install_from_server_path`); every path that cannot be used gets the
    same message, so the answer tells nothing about other files on the server.
    """
    if (source is None) == (server_path is None):
        raise ValueError("give exactly one of source and server_path")
    name = name.strip()
    if not name:
        raise ServiceError(_("The model needs a name."))
    if ModelEntry.objects.filter(name=name).exists():
        raise ServiceError(_("A model named “%(name)s” already exists.") % {"name": name})
    store, slug = _store_slot(name)
    if source is not None:
        inspection = _install_source(Path(source), store, slug)
    else:
        inspection = _install_server_path(server_path or "", store, slug)
    try:
        return ModelEntry.objects.create(
            name=name,
            parent=parent,
            recipe=recipe or {},
            created_by=user,
            **_entry_fields(inspection, store),
        )
    except IntegrityError as exc:
        raise ServiceError(_("A model named “%(name)s” already exists.") % {"name": name}) from exc


def _store_slot(name: str) -> tuple[Path, str]:
    """MODEL_STORE (made if missing) and a fresh folder name in it for this model."""
    store = Path(settings.MODEL_STORE)
    store.mkdir(parents=True, exist_ok=True)
    return store, f"{slugify(name) or 'model'}-{secrets.token_hex(4)}"


def _install_source(source: Path, store: Path, slug: str) -> modelfiles.ModelInspection:
    """Install from a path this program chose (an upload it staged, a worker's output)."""
    return modelfiles.install_model(
        source, store, slug, max_total_bytes=settings.MODEL_ARCHIVE_MAX_BYTES
    )


def _install_server_path(server_path: str, store: Path, slug: str) -> modelfiles.ModelInspection:
    """Install from a path a person typed, confined to MODEL_IMPORT_ROOTS; every path that
    cannot be used gets one message (nothing about other files on the server)."""
    roots = list(settings.MODEL_IMPORT_ROOTS)
    try:
        return modelfiles.install_from_server_path(
            server_path, roots, store, slug, max_total_bytes=settings.MODEL_ARCHIVE_MAX_BYTES
        )
    except modelfiles.ServerPathError as exc:
        if exc.disabled:
            raise TranslatableError(_IMPORT_DISABLED) from None
        msgid = gettext_noop(
            "“%(path)s”: no model folder or file by this name can be read under the "
            "folders models may be registered from (MODEL_IMPORT_ROOTS: %(roots)s)."
        )
        raise TranslatableError(
            modelfiles.Message(msgid, {"path": server_path, "roots": ", ".join(roots)})
        ) from None


_IMPORT_DISABLED = modelfiles.Message(
    gettext_noop(
        "Registering a model by a path on the server is switched off "
        "(MODEL_IMPORT_ROOTS is empty); upload the model instead."
    )
)


def model_import_start(
    *, name: str, server_path: str, user: User | None = None, parent: ModelEntry | None = None
) -> ModelImportJob:
    """Reserve the name and send the import to a worker; the request copies nothing."""
    name = name.strip()
    if not name:
        raise ServiceError(_("The model needs a name."))
    if not settings.MODEL_IMPORT_ROOTS:
        raise TranslatableError(_IMPORT_DISABLED)
    try:
        with transaction.atomic():
            reserved = _reserve_model_name(name=name, parent=parent, user=user)
            job = ModelImportJob.objects.create(
                name=name, server_path=server_path.strip()[:1000], parent=parent,
                result=reserved, created_by=user,
            )  # fmt: skip
            jobs.enqueue(job)
    except IntegrityError as exc:
        raise ServiceError(_("A model named “%(name)s” already exists.") % {"name": name}) from exc
    return job


def model_import_run(*, lease: jobs.Lease) -> ModelEntry:
    """The worker's half: check and copy the files, fill the reserved entry, finish."""
    job = ModelImportJob.objects.select_related("result").get(pk=lease.pk)
    entry = job.result
    if entry is None:
        raise ServiceError("the import job has no reserved model entry")
    store, slug = _store_slot(job.name)
    inspection = _install_server_path(job.server_path, store, slug)
    return _fill_reserved(lease, entry, _entry_fields(inspection, store), inspection.root)


def _fill_reserved(
    lease: jobs.Lease,
    entry: ModelEntry,
    fields: dict[str, Any],
    root: Path,
    *,
    recipe: dict[str, Any] | None = None,
    **finish: Any,
) -> ModelEntry:
    """Under the job's lease: the reserved entry takes the files installed at ``root``
    (described by ``fields``) and the job finishes. A lost lease removes the files (the new
    holder installs its own)."""
    extra = {} if recipe is None else {"recipe": recipe}
    try:
        with lease.guard():
            ModelEntry.objects.filter(pk=entry.pk, ready=False).update(
                **fields, **extra, ready=True
            )
            jobs.job_finish(lease, **finish)
    except jobs.LeaseLost:
        if root.is_dir():
            shutil.rmtree(root, ignore_errors=True)
        else:
            root.unlink(missing_ok=True)
        raise
    entry.refresh_from_db()
    return entry


def model_import_refused(*, lease: jobs.Lease, exc: Exception) -> None:
    """A refused import fails for good and frees its name. ``error`` keeps the text as
    raised (English for the model files' checks); ``refusal`` keeps the message, when it has
    one, to be shown in the reader's language (:attr:`ModelImportJob.error_text`)."""
    message = message_of(exc)
    with lease.guard():
        lease.update(refusal=message.to_json() if message else {})
        jobs.job_fail(lease, error=str(exc))
        ModelEntry.objects.filter(made_by_import__pk=lease.pk, ready=False).delete()


def _entry_fields(inspection: modelfiles.ModelInspection, store: Path) -> dict[str, Any]:
    return {
        "kind": inspection.kind,
        "path": str(inspection.root.relative_to(store)),
        "architecture": inspection.architecture or "",
        "tokenizer_class": inspection.tokenizer_class or "",
        "total_bytes": inspection.total_bytes,
        "sha256": inspection.sha256,
    }


def _install_adapter(model_dir: Path, installed: Path) -> None:
    """The LoRA adapter the export left in ``model_dir/adapter`` (the installer copies only
    the top-level files), copied into the installed folder for its own download."""
    from adaptation.export import ADAPTER, ADAPTER_FILES

    source = model_dir / ADAPTER
    if not installed.is_dir() or not (source / ADAPTER_FILES[0]).is_file():
        return
    tmp = installed / f".{ADAPTER}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for entry in source.iterdir():
        known = entry.name in ADAPTER_FILES or entry.name in modelfiles.HF_METADATA_FILES
        if known and entry.is_file() and not entry.is_symlink():
            shutil.copyfile(entry, tmp / entry.name)
    tmp.rename(installed / ADAPTER)


def model_path(entry: ModelEntry) -> Path:
    """Where the entry's files are; a system known by its imported answers has none."""
    if entry.is_imported:
        raise ServiceError(
            _("“%(name)s” is known by its imported answers alone: it has no model files.")
            % {"name": entry.name}
        )
    path = Path(entry.path)
    return path if path.is_absolute() else Path(settings.MODEL_STORE) / path


def adaptation_start(
    *, parent: ModelEntry, name: str, config: dict[str, Any], user: User | None = None
) -> AdaptationJob:
    """Reserve the result's name, create the job row, send it to the GPU queue on commit.

    The reservation is a model entry without files (``ready=False``): nobody can register
    another model under that name while the job runs, and the job installs its result into
    exactly that entry, never into one found by name.
    """
    from adaptation.pipeline import PipelineConfig

    name = name.strip()
    if not name:
        raise ServiceError(_("The adapted model needs a name."))
    checked = PipelineConfig.from_dict(config).to_dict()  # refuses bad values before queueing
    return child_job_start(parent=parent, name=name, config=checked, user=user)


def child_job_start(
    *,
    parent: ModelEntry,
    name: str,
    config: dict[str, Any],
    user: User | None,
    method: AdaptationJob.Method = AdaptationJob.Method.RUSSIAN,
) -> AdaptationJob:
    """Reserve the name of a model a job will make from ``parent`` (an entry of the kind
    its ``method`` makes, without files), create the job with its checked ``config``, send
    it on commit."""
    try:
        with transaction.atomic():
            kind = RESULT_KINDS[method]
            reserved = _reserve_model_name(name=name, parent=parent, user=user, kind=kind)
            job = AdaptationJob.objects.create(
                parent=parent, name=name, config=config, created_by=user, result=reserved,
                method=method,
            )  # fmt: skip
            jobs.enqueue(job)
    except IntegrityError as exc:
        raise ServiceError(
            _("A model named “%(name)s” already exists or is being made.") % {"name": name}
        ) from exc
    return job


def _reserve_model_name(
    *,
    name: str,
    parent: ModelEntry | None,
    user: User | None,
    kind: str = ModelEntry.Kind.HF_FOLDER,
) -> ModelEntry:
    """An entry without files (``ready=False``) that holds the name for a running job."""
    return ModelEntry.objects.create(
        name=name, kind=kind, path="", sha256="", parent=parent, ready=False, created_by=user,
    )  # fmt: skip


def adaptation_requeue(*, job: AdaptationJob) -> None:
    """Send an unfinished adaptation job again; its pipeline resumes from the last step."""
    with transaction.atomic():
        if job.result_id is None:
            reserved = _reserve_model_name(
                name=job.name, parent=job.parent, user=job.created_by, kind=job.result_kind
            )
            AdaptationJob.objects.filter(pk=job.pk).update(result=reserved)
        jobs.job_requeue(job)


def adaptation_claim(
    *, job_id: int, worker: str, device: str, max_attempts: int
) -> jobs.Lease | None:
    """Claim an adaptation job; its pipeline skips the steps already done."""
    return jobs.job_claim(
        AdaptationJob, job_id, worker=worker, device=device, max_attempts=max_attempts
    )


def reserved_result(job: AdaptationJob) -> ModelEntry:
    """The entry reserved for the model a job makes (an internal error when it has none)."""
    if job.result is None:
        raise RuntimeError(f"adaptation job {job.pk} has no reserved model entry")
    return job.result


def finished_if_installed(lease: jobs.Lease, entry: ModelEntry, summary: dict[str, Any]) -> bool:
    """Finish the job when an earlier attempt installed its model and died before finishing
    the job (nothing is installed twice); False when the model is still to install."""
    if not entry.ready:
        return False
    with lease.guard():
        jobs.job_finish(lease, summary=summary, step="done")
    return True


def adaptation_finish(*, lease: jobs.Lease, model_dir: Path, summary: dict[str, Any]) -> ModelEntry:
    """Install the adapted model into the entry reserved for it, under the job's lease."""
    job = AdaptationJob.objects.select_related("result").get(pk=lease.pk)
    entry = reserved_result(job)
    if finished_if_installed(lease, entry, summary):
        return entry
    store, slug = _store_slot(job.name)
    inspection = _install_source(Path(model_dir), store, slug)
    _install_adapter(Path(model_dir), inspection.root)
    recipe = {"method": "russian_vocabulary_adaptation", "config": job.config, "steps": summary}
    return _fill_reserved(
        lease, entry, _entry_fields(inspection, store), inspection.root,
        recipe=recipe, summary=summary, step="done",
    )  # fmt: skip
