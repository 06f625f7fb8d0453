"""Analysis jobs on the default queue: a cache row's primary key in, the report written back."""

from __future__ import annotations

from sbs.celery import app


@app.task(
    name="workers.tasks.compute_report",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=600,
    time_limit=660,
)
def compute_report(report_id: int) -> str:
    """Compute a study's full report (bootstrap, ratings, plots) into its cache row.

    Idempotent: the row is claimed by a conditional update and overwritten whole, so a
    redelivered message computes nothing twice and loses nothing.
    """
    from sbs.analysis.services import report_compute

    return report_compute(report_id=report_id)
