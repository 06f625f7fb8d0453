"""What runs beside the tasks in a worker process: torch's thread count, the heartbeat of
the job being run (with the time-limit watchdog), and the reaper of expired leases.

Workers run the solo pool (one task at a time, in the main process), where Celery enforces
no time limit; the watchdog here does. While a task holds a job, a daemon thread renews the
lease every ``JOB_LEASE_SECONDS / 4``:

- lease lost (another worker took the job over): the task is told to stop, and every
  write it still tries is refused by the fence anyway;
- past ``CELERY_TASK_SOFT_TIME_LIMIT``: the task is told to stop (it checks between
  batches and fails the job with "time limit exceeded");
- past ``CELERY_TASK_TIME_LIMIT``: the job is failed (fenced) and, in a worker process, the
  process exits at once — a task stuck in native code cannot be interrupted otherwise; the
  supervisor (systemd, the demo, Kubernetes) starts a fresh worker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutdown
from django.conf import settings

if TYPE_CHECKING:
    from sbs.core.jobs import Lease

log = logging.getLogger(__name__)

_in_worker = threading.Event()  # set in a worker process: the watchdog may end it
_stop_reaper = threading.Event()
EXIT_HARD_LIMIT = 70


class Holding:
    """A task's view of its lease: ``check()`` between units of work."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.lost = threading.Event()
        self.soft_limit = threading.Event()

    def check(self) -> None:
        from sbs.core.jobs import LeaseLost

        if self.lost.is_set():
            raise LeaseLost(f"{self.lease.model.__name__} {self.lease.pk}: lease lost")
        if self.soft_limit.is_set():
            raise TimeLimitReached("time limit exceeded")


class TimeLimitReached(RuntimeError):
    """The job ran past CELERY_TASK_SOFT_TIME_LIMIT."""


def _heartbeat(holding: Holding, done: threading.Event) -> None:
    from django.db import connection

    from sbs.core.jobs import LeaseLost, job_fail

    started = time.monotonic()
    interval = max(0.2, settings.JOB_LEASE_SECONDS / 4)
    try:
        while not done.wait(interval):
            elapsed = time.monotonic() - started
            if elapsed > settings.CELERY_TASK_TIME_LIMIT:
                log.error("job %s past the hard time limit: failing it", holding.lease.pk)
                with suppress(LeaseLost):
                    job_fail(holding.lease, error="time limit exceeded (hard limit)")
                holding.lost.set()
                if _in_worker.is_set():
                    os._exit(EXIT_HARD_LIMIT)
                return
            if elapsed > settings.CELERY_TASK_SOFT_TIME_LIMIT:
                holding.soft_limit.set()
            if not holding.lease.renew():
                log.warning("job %s: lease %s lost", holding.lease.pk, holding.lease.fence)
                holding.lost.set()
                return
    finally:
        connection.close()


@contextmanager
def holding(lease: Lease) -> Iterator[Holding]:
    """Keep the lease alive (and watch the time limits) while the block runs."""
    state = Holding(lease)
    done = threading.Event()
    thread = threading.Thread(
        target=_heartbeat, args=(state, done), name=f"lease-{lease.pk}", daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        done.set()
        thread.join(timeout=30)


def _reaper_loop() -> None:
    from django.db import connection

    from sbs.core.jobs import jobs_reap_expired

    interval = max(0.5, settings.JOB_LEASE_SECONDS / 2)
    while True:
        try:
            jobs_reap_expired()
        except Exception:  # a database hiccup: try again next round
            log.exception("reaping expired leases failed")
        finally:
            connection.close()
        if _stop_reaper.wait(interval):
            return


@worker_init.connect  # the solo pool runs tasks in the main process
@worker_process_init.connect  # the prefork pool in its children
def _worker_process(**_: object) -> None:
    """Apply TORCH_NUM_THREADS before any task runs; allow the watchdog to end the process."""
    _in_worker.set()
    if settings.TORCH_NUM_THREADS > 0:
        import torch

        torch.set_num_threads(settings.TORCH_NUM_THREADS)


@worker_ready.connect
def _start_reaper(**_: object) -> None:
    _stop_reaper.clear()
    threading.Thread(target=_reaper_loop, name="lease-reaper", daemon=True).start()


@worker_shutdown.connect
def _stop(**_: object) -> None:
    _stop_reaper.set()
