"""What every job task shares: who and where the worker is, and the failure policy."""

from __future__ import annotations

import logging
import socket
import traceback
from typing import TYPE_CHECKING, Any

from workers.runtime import TimeLimitReached

if TYPE_CHECKING:
    from adaptation.modelio import LoadedModel
    from sbs.catalog.models import ModelEntry
    from sbs.core.jobs import Lease

log = logging.getLogger(__name__)


def transient_errors() -> tuple[type[BaseException], ...]:
    """Worth another attempt: device memory taken by another job, a dropped connection."""
    from django.db import InterfaceError, OperationalError

    from adaptation.modelio import out_of_memory_errors

    return (ConnectionError, TimeoutError, MemoryError, OperationalError, InterfaceError,
            *out_of_memory_errors())  # fmt: skip


def load_entry(entry: ModelEntry, *, device: str) -> LoadedModel:
    """A catalog model loaded for inference: its files, and for an ensemble of task adapters
    its base, which is its parent's files (``sbs.catalog.ensembles.base_path``)."""
    from pathlib import Path

    from django.conf import settings

    from adaptation.loading import load_any
    from sbs.catalog import ensembles, services

    return load_any(
        services.model_path(entry),
        cache_dir=Path(settings.MODEL_CACHE),
        device=device,
        base_path=ensembles.base_path(entry),
    )


def worker_name(task: Any) -> str:
    return f"{socket.gethostname()}:{task.request.hostname or ''}"


def fail(task: Any, lease: Lease, exc: BaseException, *, max_attempts: int) -> str:
    """Record a failure under the lease: transient ones go back to pending and are retried
    with a growing delay while attempts remain; anything else fails the job with its trace."""
    from sbs.core.jobs import LeaseLost, job_fail

    try:
        if isinstance(exc, LeaseLost):
            log.warning("%s", exc)
            return "lease lost"
        if isinstance(exc, TimeLimitReached):
            job_fail(lease, error="time limit exceeded")
            return "failed"
        if isinstance(exc, transient_errors()):
            attempts = lease.model._default_manager.values_list("attempts", flat=True).get(
                pk=lease.pk
            )
            final = attempts >= max_attempts
            job_fail(lease, error=f"{type(exc).__name__}: {exc}", final=final)
            if not final:
                raise task.retry(exc=exc, countdown=10 * attempts) from exc
            return "failed"
        log.exception("%s %s failed", lease.model.__name__, lease.pk)
        job_fail(lease, error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=8)}")
        return "failed"
    except LeaseLost:
        return "lease lost"
