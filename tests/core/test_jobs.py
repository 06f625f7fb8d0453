"""The job lifecycle: leases, fencing tokens, heartbeats, the reaper and the time limits."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from sbs.catalog.models import ModelEntry
from sbs.core import jobs
from sbs.studies import services
from sbs.studies.models import Answer, GenerationRun
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run():
    def entry(name):
        return ModelEntry.objects.create(name=name, kind="hf_folder", path=name, sha256="0" * 64)

    study = factories.draft_study(factories.researcher(), (entry("m-a"), entry("m-b")), n=2)
    return GenerationRun.objects.create(study=study, model=study.model_a, total_count=2)


def _claim(run):
    return services.run_claim(run_id=run.pk, worker="w", device="cpu", max_attempts=3)


def _expire(run):
    GenerationRun.objects.filter(pk=run.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def _answer(run, text="ответ"):
    q = run.study.question_set.questions.first()
    return services.NewAnswer(question_id=q.pk, text=text, prompt_tokens=1, new_tokens=1,
                              seconds=0.1, tokenize_seconds=0.0, batch_size=1,
                              stop_reason="eos")  # fmt: skip


def test_a_live_lease_cannot_be_claimed_twice(run):
    first = _claim(run)
    assert first is not None and first.fence == 1
    assert _claim(run) is None  # a redelivery while the holder is alive: not claimed
    run.refresh_from_db()
    assert run.status == "running" and run.attempts == 1 and run.fence == 1


def test_after_expiry_the_old_holder_writes_nothing(run):
    old = _claim(run)
    _expire(run)
    new = _claim(run)
    assert new is not None and new.fence == old.fence + 1
    services.answers_upsert(lease=new, answers=[_answer(run, "новый")])
    with pytest.raises(jobs.LeaseLost):
        services.answers_upsert(lease=old, answers=[_answer(run, "старый")])
    with pytest.raises(jobs.LeaseLost):
        jobs.job_progress(old, progress=0.9)
    with pytest.raises(jobs.LeaseLost):
        services.run_finish(lease=old)
    stored = Answer.objects.get(run=run)
    assert stored.text == "новый" and stored.fence == new.fence
    run.refresh_from_db()
    assert run.status == "running" and run.progress == 0.0
    services.run_finish(lease=new)
    run.refresh_from_db()
    assert run.status == "done" and run.lease_expires_at is None


def test_the_reaper_requeues_an_expired_job_once_and_fails_it_when_attempts_are_used(
    run, monkeypatch
):
    sent = []
    monkeypatch.setattr(jobs, "_enqueue", lambda model, pk: sent.append((model, pk)))
    old = _claim(run)
    assert jobs.jobs_reap_expired() == 0  # the lease is alive
    _expire(run)
    assert jobs.jobs_reap_expired() == 1
    assert jobs.jobs_reap_expired() == 0  # won once
    assert sent == [(GenerationRun, run.pk)]
    run.refresh_from_db()
    assert run.status == "pending"
    with pytest.raises(jobs.LeaseLost):  # the hung holder, waking up
        jobs.job_progress(old, progress=0.5)
    GenerationRun.objects.filter(pk=run.pk).update(
        status="running", attempts=3, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    jobs.jobs_reap_expired(max_attempts=3)
    run.refresh_from_db()
    assert run.status == "failed" and "gave up after 3 attempts" in run.error


def test_the_heartbeat_keeps_a_slow_job_alive(run, settings):
    from workers.runtime import holding

    settings.JOB_LEASE_SECONDS = 1
    lease = _claim(run)
    with holding(lease) as held:
        time.sleep(2.5)  # longer than the lease: only the heartbeat keeps it
        held.check()
        assert jobs.jobs_reap_expired() == 0
        assert _claim(run) is None
    run.refresh_from_db()
    assert run.lease_expires_at > timezone.now() - timedelta(seconds=1)


def test_a_taken_over_lease_stops_its_holder_at_the_next_check(run, settings):
    from workers.runtime import holding

    settings.JOB_LEASE_SECONDS = 1
    lease = _claim(run)
    with holding(lease) as held:
        GenerationRun.objects.filter(pk=run.pk).update(fence=lease.fence + 1)  # taken over
        deadline = time.monotonic() + 5
        while not held.lost.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(jobs.LeaseLost):
            held.check()


def test_the_watchdog_enforces_the_soft_and_hard_limits(run, settings):
    from workers.runtime import TimeLimitReached, holding

    settings.JOB_LEASE_SECONDS = 1
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 0
    settings.CELERY_TASK_TIME_LIMIT = 1
    lease = _claim(run)
    with holding(lease) as held:
        time.sleep(0.5)
        with pytest.raises(TimeLimitReached):
            held.check()
        deadline = time.monotonic() + 5
        while not held.lost.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
    run.refresh_from_db()  # past the hard limit: failed (and a worker process would exit)
    assert run.status == "failed" and "time limit" in run.error
