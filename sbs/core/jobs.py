"""Job lifecycle services: enqueue, claim (a lease with a fencing token), heartbeat,
progress, fail, finish, and the reaper that hands expired leases to another worker.

The rules, in one place:

- A job is claimed by a conditional update: ``pending``, or ``running`` with an expired
  lease. Each claim adds one to ``attempts`` and to ``fence`` and returns a :class:`Lease`.
- Every write of the holder goes through the lease: ``lease.rows()`` matches the row only
  while ``fence`` and ``status=running`` are what the claim set. A write that matches no row
  raises :class:`LeaseLost`; the holder stops and writes nothing more.
- The heartbeat renews ``lease_expires_at`` (``JOB_LEASE_SECONDS`` ahead); a job whose
  heartbeat stopped (a hung or dead worker) is given back by :func:`jobs_reap_expired`,
  which puts it back to ``pending`` and enqueues it again, or fails it once its attempts
  are used up.
- Tasks are sent by name after the transaction commits, so ``sbs`` never imports
  ``workers``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from sbs.core.models import Job, JobStatus

log = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """Another worker holds this job now (or it ended): the old holder must write nothing."""


def enqueue(job: Job) -> None:
    """Send the job's task by name once the surrounding transaction commits."""
    _enqueue(type(job), job.pk)


def _enqueue(model: type[Job], pk: int) -> None:
    def send() -> None:
        from sbs.celery import app

        app.send_task(model.task_name, args=[pk], queue=model.queue)

    transaction.on_commit(send)


def lease_delta() -> timedelta:
    return timedelta(seconds=settings.JOB_LEASE_SECONDS)


@dataclass(frozen=True)
class Lease:
    """The right to write one job row: its model, primary key and fencing token."""

    model: type[Job]
    pk: int
    fence: int

    def rows(self) -> QuerySet[Any]:
        """The job row, only while this lease still holds it."""
        return self.model._default_manager.filter(
            pk=self.pk, fence=self.fence, status=JobStatus.RUNNING
        )

    def update(self, **fields: Any) -> None:
        """A fenced write: raises :class:`LeaseLost` when the row is no longer ours."""
        if not self.rows().update(**fields):
            raise LeaseLost(f"{self.model.__name__} {self.pk}: lease {self.fence} lost")

    def guard(self) -> transaction.Atomic:
        """``with lease.guard(): ...`` — a transaction whose first statement is a fenced
        write of the heartbeat. It takes the row's write lock (PostgreSQL) or the database
        write lock (SQLite) before anything else is written, so a claim cannot slip in
        between the check and the writes that follow."""
        return _Guard(self)  # type: ignore[return-value]

    def renew(self) -> bool:
        """Push the lease forward; False once it is lost."""
        now = timezone.now()
        return bool(self.rows().update(heartbeat_at=now, lease_expires_at=now + lease_delta()))


class _Guard:
    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.atomic = transaction.atomic()

    def __enter__(self) -> Lease:
        self.atomic.__enter__()
        try:
            now = timezone.now()
            self.lease.update(heartbeat_at=now, lease_expires_at=now + lease_delta())
        except BaseException as exc:
            self.atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self.lease

    def __exit__(self, *exc: Any) -> Any:
        return self.atomic.__exit__(*exc)


def job_claim(
    model: type[Job], pk: int, *, worker: str, device: str, max_attempts: int
) -> Lease | None:
    """Claim a pending job, or a running one whose lease expired; None when not ours.

    A job whose attempts are used up ends as failed with the reason on the row.
    """
    now = timezone.now()
    claimable = Q(status=JobStatus.PENDING) | Q(
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True), status=JobStatus.RUNNING
    )
    with transaction.atomic():
        claimed = (
            model._default_manager.filter(claimable, pk=pk, attempts__lt=max_attempts).update(
                status=JobStatus.RUNNING,
                attempts=F("attempts") + 1,
                fence=F("fence") + 1,
                worker=worker[:200],
                device=device[:64],
                started_at=now,
                heartbeat_at=now,
                lease_expires_at=now + lease_delta(),
                error="",
            )
            == 1
        )
        if claimed:
            fence = model._default_manager.values_list("fence", flat=True).get(pk=pk)
            return Lease(model, pk, fence)
    _give_up(model, Q(pk=pk) & claimable, max_attempts)
    return None


def _give_up(model: type[Job], where: Q, max_attempts: int) -> int:
    return model._default_manager.filter(where, attempts__gte=max_attempts).update(
        status=JobStatus.FAILED,
        finished_at=timezone.now(),
        lease_expires_at=None,
        error=f"gave up after {max_attempts} attempts (the worker stopped mid-job each time)",
    )


def job_progress(lease: Lease, *, progress: float | None = None, **fields: Any) -> None:
    if progress is not None:
        fields["progress"] = max(0.0, min(1.0, progress))
    lease.update(**fields)


def job_fail(lease: Lease, *, error: str, final: bool = True) -> None:
    """Fail the job (final) or hand it back to ``pending`` for a retry."""
    lease.update(
        status=JobStatus.FAILED if final else JobStatus.PENDING,
        error=error[:10_000],
        finished_at=timezone.now() if final else None,
        lease_expires_at=None,
    )


def job_finish(lease: Lease, **fields: Any) -> None:
    lease.update(
        status=JobStatus.DONE,
        progress=1.0,
        finished_at=timezone.now(),
        lease_expires_at=None,
        **fields,
    )


def job_retry(job: Job) -> bool:
    """A failed job goes back to pending with fresh attempts and is sent again."""
    with transaction.atomic():
        rows = type(job)._default_manager.filter(pk=job.pk, status=JobStatus.FAILED)
        won = rows.update(status=JobStatus.PENDING, attempts=0, error="", finished_at=None)
        if won:
            enqueue(job)
    return bool(won)


def job_requeue(job: Job) -> None:
    """Send an unfinished job again with fresh attempts (the single-machine demo's resume:
    no other worker may hold it). Its fence grows, so a stray old holder writes nothing."""
    with transaction.atomic():
        type(job)._default_manager.filter(pk=job.pk).exclude(status=JobStatus.DONE).update(
            status=JobStatus.PENDING, attempts=0, error="", fence=F("fence") + 1
        )
        enqueue(job)


def job_kinds() -> list[type[Job]]:
    """Every concrete job model of the project."""
    from django.apps import apps

    return [
        m for m in apps.get_models() if issubclass(m, Job) and m.task_name and not m._meta.abstract
    ]


def jobs_reap_expired(max_attempts: int | None = None) -> int:
    """Hand every running job whose lease expired back to the queue (or fail it when its
    attempts are used up). Safe to run from every worker at once: each row is won once."""
    max_attempts = max_attempts or settings.GENERATION_MAX_ATTEMPTS
    now = timezone.now()
    count = 0
    for model in job_kinds():
        expired = Q(status=JobStatus.RUNNING, lease_expires_at__lt=now)
        count += _give_up(model, expired, max_attempts)
        for pk, fence in model._default_manager.filter(
            expired, attempts__lt=max_attempts
        ).values_list("pk", "fence"):
            with transaction.atomic():
                won = model._default_manager.filter(expired, pk=pk, fence=fence).update(
                    status=JobStatus.PENDING, lease_expires_at=None
                )
                if won:
                    log.warning("%s %s: lease expired, sent again", model.__name__, pk)
                    _enqueue(model, pk)
                    count += 1
    return count
