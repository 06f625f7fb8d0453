"""``compute_report``: a study's full report (bootstrap, ratings, plots) into its cache row,
under a lease, on the default queue.

Idempotent before it is ``acks_late``: the row is claimed with a lease and a fencing token,
so a redelivered message finds it taken (or done) and computes nothing twice; the report is
stored by one fenced write, so a worker whose lease was taken over stores nothing.
"""

from __future__ import annotations

from django.conf import settings

from sbs.celery import app
from workers.runtime import holding
from workers.tasks.common import fail, worker_name


@app.task(
    bind=True, name="workers.tasks.compute_report", acks_late=True, reject_on_worker_lost=True,
    soft_time_limit=600, time_limit=660,
)  # fmt: skip
def compute_report(self, report_id: int) -> str:  # type: ignore[no-untyped-def]
    from sbs.analysis import services
    from sbs.analysis.models import ReportCache
    from sbs.core.jobs import job_claim

    max_attempts = settings.GENERATION_MAX_ATTEMPTS
    lease = job_claim(
        ReportCache, report_id, worker=worker_name(self), device="cpu", max_attempts=max_attempts
    )
    if lease is None:
        return "not claimed"
    with holding(lease) as held:
        try:
            if services.report_supersede(lease=lease):
                return "superseded"
            computed = services.report_compute(report_id=report_id)
            held.check()
            services.report_finish(lease=lease, computed=computed)
        except Exception as exc:
            return fail(self, lease, exc, max_attempts=max_attempts)
    return "done"
