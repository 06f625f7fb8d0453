"""Writes of the analysis app: requesting, computing and caching a study's report.

The page never bootstraps. :func:`report_request` finds or creates the cache row for the
current votes fingerprint (the unique constraint makes it idempotent: one row, hence at
most one pending job, per fingerprint) and enqueues the job after commit.
:func:`report_compute` is what the job runs: it claims the row with a conditional
update, skips a row that a newer one has superseded, computes the full report and its
plots, and writes them back.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from sbs.analysis import selectors
from sbs.analysis.figures import report_figures_all_languages
from sbs.analysis.models import ReportCache
from sbs.analysis.report import SCHEMA, build_preliminary, build_report
from sbs.core.queues import Queue
from sbs.studies.models import Study

BOOTSTRAP_ROUNDS = 1000
# A job not started (or not finished) after this long is presumed lost and sent again.
STALE_AFTER = timedelta(minutes=10)
# A failed job is sent again by the first request (page view, export, vote) this long after
# it failed. Short, so a fixed bug or a passing outage heals by itself; not zero, so the
# page's own 3-second refresh does not keep a worker busy with a job that fails every time.
RETRY_FAILED_AFTER = timedelta(seconds=30)


def report_settings(study: Study) -> dict[str, int]:
    """Bootstrap rounds and seed of a study's report (the seed is the study's)."""
    return {"rounds": BOOTSTRAP_ROUNDS, "seed": study.seed}


def report_fingerprint(study: Study) -> str:
    s = report_settings(study)
    return f"{selectors.votes_fingerprint(study)}/r{s['rounds']}s{s['seed']}/schema{SCHEMA}"


def report_build(study: Study, *, preliminary: bool = False) -> dict[str, Any]:
    """The full report of the study's current votes, or only its cheap part."""
    s = report_settings(study)
    frame = selectors.study_vote_frame(study)
    a, b = study.model_a.name, study.model_b.name
    speed = selectors.speed_dicts(study)
    if preliminary:
        return build_preliminary(frame, original=a, adapted=b, speed=speed, seed=s["seed"])
    return build_report(
        frame, original=a, adapted=b, speed=speed, rounds=s["rounds"], seed=s["seed"]
    )


def _enqueue(report_id: int) -> None:
    from sbs.celery import app

    transaction.on_commit(
        lambda: app.send_task("workers.tasks.compute_report", args=[report_id], queue=Queue.DEFAULT)
    )


def report_request(*, study: Study) -> ReportCache:
    """The cache row for the current votes; a job is enqueued (after commit) if it is new.

    A row still pending or running after :data:`STALE_AFTER` is enqueued again (the job
    is idempotent), and so is a superseded row whose votes are current again (a vote
    withdrawn), and a failed row :data:`RETRY_FAILED_AFTER` after it failed: a failure
    is never final, the next request after that pause tries again (new votes make a new
    row and a new job at once).
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
        _enqueue(row.pk)
        return row
    # Sent again: a job presumed lost, a row superseded by votes since withdrawn, or a
    # job that failed a little while ago.
    resend = (
        Q(status=ReportCache.Status.SUPERSEDED)
        | Q(
            status__in=[ReportCache.Status.PENDING, ReportCache.Status.RUNNING],
            enqueued_at__lt=now - STALE_AFTER,
        )
        | Q(status=ReportCache.Status.FAILED, finished_at__lt=now - RETRY_FAILED_AFTER)
        | Q(status=ReportCache.Status.FAILED, finished_at__isnull=True)
    )
    if ReportCache.objects.filter(resend, pk=row.pk).update(
        enqueued_at=now, status=ReportCache.Status.PENDING
    ):
        row.refresh_from_db()
        _enqueue(row.pk)
    return row


def report_latest_done(*, study: Study) -> ReportCache | None:
    return (
        ReportCache.objects.filter(study=study, status=ReportCache.Status.DONE)
        .order_by("-finished_at", "-pk")
        .first()
    )


def _claim(report_id: int) -> bool:
    now = timezone.now()
    claimable = Q(status=ReportCache.Status.PENDING) | Q(
        status=ReportCache.Status.RUNNING, started_at__lt=now - STALE_AFTER
    )
    return (
        ReportCache.objects.filter(claimable, pk=report_id).update(
            status=ReportCache.Status.RUNNING, started_at=now
        )
        == 1
    )


def report_compute(*, report_id: int) -> str:
    """Compute and store the report of a cache row; returns what happened (for the log).

    A row that a newer row of the same study has superseded is skipped: the newest row's
    job computes the current votes, so a burst of votes costs one computation, not one
    per page view.
    """
    if not _claim(report_id):
        return "not claimed"
    row = ReportCache.objects.select_related("study__model_a", "study__model_b").get(pk=report_id)
    newer = ReportCache.objects.filter(study=row.study, enqueued_at__gt=row.enqueued_at)
    if newer.exclude(pk=row.pk).exists():
        ReportCache.objects.filter(pk=report_id).update(
            status=ReportCache.Status.SUPERSEDED, finished_at=timezone.now()
        )
        return "superseded"
    started = time.perf_counter()
    try:
        report = report_build(row.study)
        figures = report_figures_all_languages(report)
    except Exception:
        ReportCache.objects.filter(pk=report_id).update(
            status=ReportCache.Status.FAILED,
            error=traceback.format_exc()[-4000:],
            finished_at=timezone.now(),
        )
        raise
    finished = timezone.now()
    with transaction.atomic():
        ReportCache.objects.filter(pk=report_id).update(
            status=ReportCache.Status.DONE,
            report=report,
            plots=figures,
            n_votes=report["counts"]["votes"],
            seconds=time.perf_counter() - started,
            finished_at=finished,
            error="",
        )
        # Older rows of the study are of no further use once a newer report is done.
        ReportCache.objects.filter(study=row.study, enqueued_at__lt=row.enqueued_at).exclude(
            status__in=[ReportCache.Status.PENDING, ReportCache.Status.RUNNING]
        ).delete()
    return "done"


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
