"""Writes of the analysis app: requesting, computing and caching a study's report.

The page never bootstraps. :func:`report_request` finds or creates the cache row for the
current votes fingerprint (the unique constraint makes it idempotent: one row, hence at
most one pending job, per fingerprint) and enqueues its job after commit.

The row is a job of the one lifecycle (:mod:`sbs.core.jobs`): the task
(``workers/tasks/report.py``) claims it with a lease, lets :func:`report_supersede` end it
when a newer row of the study exists, computes it with :func:`report_compute` (no
writes) and stores it with :func:`report_finish`, a fenced write: a worker whose lease
was taken over stores nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from sbs.analysis import selectors
from sbs.analysis.figures import report_figures_all_languages
from sbs.analysis.models import ReportCache
from sbs.analysis.report import build_preliminary, build_report
from sbs.analysis.sections import schema_hash
from sbs.core import jobs
from sbs.questions import selectors as question_selectors
from sbs.studies.models import Study, with_systems

BOOTSTRAP_ROUNDS = 1000
# A pending job not started this long after it was sent is presumed lost and sent again
# (a running one is sent again once its lease expired: the worker stopped renewing it).
STALE_AFTER = timedelta(minutes=10)
# A failed job is sent again by the first request (page view, export, vote) this long after
# it failed. Short, so a fixed bug or a passing outage heals by itself; not zero, so the
# page's own 3-second refresh does not keep a worker busy with a job that fails every time.
RETRY_FAILED_AFTER = timedelta(seconds=30)


def report_settings(study: Study) -> dict[str, int]:
    """Bootstrap rounds and seed of a study's report (the seed is the study's)."""
    return {"rounds": BOOTSTRAP_ROUNDS, "seed": study.seed}


def report_fingerprint(study: Study) -> str:
    """The votes, the bootstrap settings, the benchmark runs both models finished (when
    there are any) and the report's schema (its sections): a cached report is current only
    while all of them are the same."""
    s = report_settings(study)
    bench = question_selectors.benchmark_fingerprint(study.model_a, study.model_b)
    bench = f"/bench-{bench}" if bench else ""
    return (
        f"{selectors.votes_fingerprint(study)}/r{s['rounds']}s{s['seed']}{bench}"
        f"/schema-{schema_hash()}"
    )


def report_build(study: Study, *, preliminary: bool = False) -> dict[str, Any]:
    """The full report of the study's current votes, or only its cheap part."""
    s = report_settings(study)
    frame = selectors.study_vote_frame(study)
    systems = [m.name for m in study.systems()]
    a, b = systems[:2]
    speed = selectors.speed_dicts(study)
    if preliminary:
        return build_preliminary(
            frame, original=a, adapted=b, systems=systems, speed=speed, seed=s["seed"]
        )
    benchmarks = question_selectors.forgetting_inputs(study.model_a, study.model_b)
    merge = ((study.model_b.recipe or {}).get("steps") or {}).get("merge")
    return build_report(
        frame, original=a, adapted=b, systems=systems, speed=speed, rounds=s["rounds"],
        seed=s["seed"], benchmarks=benchmarks, merge=merge,
        texts=question_selectors.text_bpc_inputs(study.model_a, study.model_b),
    )  # fmt: skip


def report_request(*, study: Study) -> ReportCache:
    """The cache row for the current votes; a job is enqueued (after commit) if it is new.

    Sent again (the job is idempotent): a row still pending :data:`STALE_AFTER` after it
    was sent, a running row whose lease expired, a superseded row whose votes are current
    again (a vote withdrawn), and a failed row :data:`RETRY_FAILED_AFTER` after it failed:
    a failure is never final, the next request after that pause tries again with fresh
    attempts (new votes make a new row and a new job at once).
    """
    fingerprint = report_fingerprint(study)
    now = timezone.now()
    try:
        with transaction.atomic():
            row, created = ReportCache.objects.get_or_create(
                study=study, fingerprint=fingerprint, defaults={"enqueued_at": now}
            )
    except IntegrityError:  # a concurrent request created it first
        row, created = ReportCache.objects.get(study=study, fingerprint=fingerprint), False
    if created:
        jobs.enqueue(row)
        return row
    lost = Q(status=ReportCache.Status.PENDING, enqueued_at__lt=now - STALE_AFTER) | Q(
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True),
        status=ReportCache.Status.RUNNING,
    )
    again = (
        Q(status=ReportCache.Status.SUPERSEDED)
        | Q(status=ReportCache.Status.FAILED, finished_at__lt=now - RETRY_FAILED_AFTER)
        | Q(status=ReportCache.Status.FAILED, finished_at__isnull=True)
    )
    pending = {"status": ReportCache.Status.PENDING, "enqueued_at": now, "lease_expires_at": None}
    with transaction.atomic():
        sent = ReportCache.objects.filter(lost, pk=row.pk).update(**pending) or (
            ReportCache.objects.filter(again, pk=row.pk).update(
                **pending, attempts=0, error="", finished_at=None
            )
        )
        if sent:
            jobs.enqueue(row)
    if sent:
        row.refresh_from_db()
    return row


def report_latest_done(*, study: Study) -> ReportCache | None:
    return (
        ReportCache.objects.filter(study=study, status=ReportCache.Status.DONE)
        .order_by("-finished_at", "-pk")
        .first()
    )


def report_supersede(*, lease: jobs.Lease) -> bool:
    """End the job as superseded when the page has asked for a newer row of the study
    since: that row's job computes the current votes, so a burst of votes costs one
    computation, not one per page view. Fenced; False when there is no newer row."""
    with lease.guard():
        row = ReportCache.objects.only("study_id", "enqueued_at").get(pk=lease.pk)
        newer = ReportCache.objects.filter(study_id=row.study_id, enqueued_at__gt=row.enqueued_at)
        if not newer.exclude(pk=lease.pk).exists():
            return False
        lease.update(
            status=ReportCache.Status.SUPERSEDED,
            finished_at=timezone.now(),
            lease_expires_at=None,
        )
    return True


@dataclass(frozen=True)
class ComputedReport:
    """A report and its plots in every language, as the job computed them."""

    report: dict[str, Any]
    plots: dict[str, dict[str, str]]
    seconds: float


def report_compute(*, report_id: int) -> ComputedReport:
    """Compute the full report of a cache row's study and its plots (no writes)."""
    row = ReportCache.objects.get(pk=report_id)
    row.study = with_systems().get(pk=row.study_id)
    started = time.perf_counter()
    report = report_build(row.study)
    plots = report_figures_all_languages(report)
    return ComputedReport(report, plots, time.perf_counter() - started)


def report_finish(*, lease: jobs.Lease, computed: ComputedReport) -> None:
    """Store a computed report and finish its job, under the lease (fenced: raises
    :class:`~sbs.core.jobs.LeaseLost`, storing nothing, when the row is no longer ours).
    The study's older finished rows go: a newer report is done."""
    with lease.guard():
        jobs.job_finish(
            lease,
            report=computed.report,
            plots=computed.plots,
            n_votes=computed.report["counts"]["votes"],
            seconds=computed.seconds,
            error="",
        )
        row = ReportCache.objects.only("study_id", "enqueued_at").get(pk=lease.pk)
        ReportCache.objects.filter(study_id=row.study_id, enqueued_at__lt=row.enqueued_at).exclude(
            status__in=[ReportCache.Status.PENDING, ReportCache.Status.RUNNING]
        ).delete()


@dataclass(frozen=True)
class PageReport:
    """What the result page shows: the report, its plots and whether it is current."""

    report: dict[str, Any]
    plots: dict[str, str]
    state: str  # "current", "stale" (an older full report) or "preliminary" (cheap part only)
    fresh: dict[str, Any] | None  # the cheap part for the current votes, when not current
    row: ReportCache


def report_for_page(*, study: Study, language: str) -> PageReport:
    """The cached full report if current; else enqueue it and compute the cheap parts now."""
    row = report_request(study=study)
    if row.status == ReportCache.Status.DONE and row.report is not None:
        return PageReport(row.report, row.plots.get(language, {}), "current", None, row)
    fresh = report_build(study, preliminary=True)
    previous = report_latest_done(study=study)
    if previous is not None and previous.report is not None:
        return PageReport(previous.report, previous.plots.get(language, {}), "stale", fresh, row)
    return PageReport(fresh, {}, "preliminary", fresh, row)
