"""The report job on the one job lifecycle: a lease with a fencing token, the reaper, the
task's failure policy, and the migration that moved the cache rows onto it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import F
from django.utils import timezone

from sbs.analysis import services
from sbs.analysis.models import ReportCache
from sbs.catalog.models import ModelEntry
from sbs.core import jobs
from tests import factories
from tests.analysis.test_report_fixtures import fast_users, make_voted_study  # noqa: F401
from workers.tasks import compute_report


def _claim(row: ReportCache, worker: str) -> jobs.Lease | None:
    return jobs.job_claim(ReportCache, row.pk, worker=worker, device="cpu", max_attempts=3)


def _expire(row: ReportCache) -> None:
    ReportCache.objects.filter(pk=row.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_users")
def test_after_its_lease_expired_the_old_holder_stores_nothing():
    voted = make_voted_study(n=4)
    row = services.report_request(study=voted.study)
    old = _claim(row, "worker-1")
    assert old is not None and old.fence == 1
    assert _claim(row, "worker-2") is None  # a live lease is not claimed twice
    computed = services.report_compute(report_id=row.pk)  # the old holder computes, slowly

    _expire(row)  # ... so slowly that its heartbeat stopped and the lease expired
    new = _claim(row, "worker-2")
    assert new is not None and new.fence == old.fence + 1
    with pytest.raises(jobs.LeaseLost):
        services.report_finish(lease=old, computed=computed)
    with pytest.raises(jobs.LeaseLost):
        services.report_supersede(lease=old)
    row.refresh_from_db()
    assert row.status == ReportCache.Status.RUNNING and row.report is None
    assert row.worker == "worker-2" and row.attempts == 2

    services.report_finish(lease=new, computed=computed)
    row.refresh_from_db()
    assert row.status == ReportCache.Status.DONE and row.fence == new.fence
    assert row.report == computed.report and row.n_votes == len(voted.planned)
    assert row.lease_expires_at is None and row.progress == 1.0
    assert compute_report.apply(args=[row.pk]).get() == "not claimed"  # a redelivery


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_users")
def test_a_task_whose_lease_was_taken_over_mid_computation_stores_nothing(monkeypatch):
    voted = make_voted_study(n=4)
    row = services.report_request(study=voted.study)
    compute = services.report_compute

    def taken_over_meanwhile(*, report_id):
        out = compute(report_id=report_id)
        ReportCache.objects.filter(pk=report_id).update(fence=F("fence") + 1)  # another claim
        return out

    monkeypatch.setattr(services, "report_compute", taken_over_meanwhile)
    assert compute_report.apply(args=[row.pk]).get() == "lease lost"
    row.refresh_from_db()
    assert row.status == ReportCache.Status.RUNNING and row.report is None and row.error == ""


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_users")
def test_the_reaper_sends_a_report_whose_worker_died_again_on_the_default_queue(monkeypatch):
    voted = make_voted_study(n=4)
    row = services.report_request(study=voted.study)
    sent = []
    monkeypatch.setattr(jobs, "_enqueue", lambda model, pk: sent.append((model, pk)))
    old = _claim(row, "worker-1")
    _expire(row)
    assert jobs.jobs_reap_expired() == 1
    assert sent == [(ReportCache, row.pk)]
    assert (ReportCache.task_name, ReportCache.queue) == ("workers.tasks.compute_report", "default")
    row.refresh_from_db()
    assert row.status == ReportCache.Status.PENDING
    with pytest.raises(jobs.LeaseLost):  # the dead worker, waking up
        services.report_supersede(lease=old)
    assert compute_report.apply(args=[row.pk]).get() == "done"


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_every_cached_report_and_maps_it_onto_the_job():
    def entry(name: str) -> ModelEntry:
        return ModelEntry.objects.create(name=name, kind="hf_folder", path=name, sha256="0" * 64)

    study = factories.draft_study(factories.researcher(), (entry("m-a"), entry("m-b")), n=2)
    now = timezone.now()
    started = now - timedelta(minutes=3)
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("analysis", "0001_initial")])
        old_apps = executor.loader.project_state([("analysis", "0001_initial")]).apps
        Old = old_apps.get_model("analysis", "ReportCache")
        rows = {
            status: Old.objects.create(
                study_id=study.pk, fingerprint=f"fp-{status}", status=status, enqueued_at=now,
                started_at=None if status == "pending" else started,
                finished_at=now if status in ("done", "failed") else None,
                report={"counts": {"votes": 3}} if status == "done" else None,
                n_votes=3 if status == "done" else 0, error="boom" if status == "failed" else "",
            ).pk
            for status in ("pending", "running", "done", "failed", "superseded")
        }  # fmt: skip
        executor = MigrationExecutor(connection)
        executor.migrate([("analysis", "0002_report_job")])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    by_status = {r.status: r for r in ReportCache.objects.filter(pk__in=rows.values())}
    assert set(by_status) == set(rows)
    pending, running, done = by_status["pending"], by_status["running"], by_status["done"]
    assert (pending.attempts, pending.fence, pending.lease_expires_at) == (0, 0, None)
    assert (running.attempts, running.fence) == (1, 1)
    assert running.lease_expires_at == started + timedelta(minutes=10)  # the old stale rule
    assert done.report == {"counts": {"votes": 3}} and done.progress == 1.0
    assert by_status["failed"].error == "boom" and by_status["failed"].finished_at == now
    # The running row is the job lifecycle's now: claimable once its lease expires.
    assert jobs.job_claim(ReportCache, running.pk, worker="w", device="cpu", max_attempts=3) is None
    _expire(running)
    lease = jobs.job_claim(ReportCache, running.pk, worker="w", device="cpu", max_attempts=3)
    assert lease is not None and lease.fence == 2
