"""Cached analysis reports: one row per (study, votes fingerprint), filled by a Celery job."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from sbs.core.models import Job
from sbs.studies.models import Study


class ReportStatus(models.TextChoices):
    """The job statuses (:class:`~sbs.core.models.JobStatus`) and one of its own."""

    PENDING = "pending", _("pending")
    RUNNING = "running", _("running")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")
    SUPERSEDED = "superseded", _("superseded by newer votes")


class ReportCache(Job):
    """The full report of a study as it was for one state of its votes, and the job that
    computes it (the one job lifecycle: :mod:`sbs.core.jobs`).

    ``fingerprint`` names that state (vote count, latest vote change, excluded answers,
    bootstrap settings, the report's schema); the page shows the row whose fingerprint
    matches the current votes and enqueues a job for it otherwise. The unique constraint
    makes the enqueue idempotent: at most one row, hence one pending job, per fingerprint.
    A job that finds a newer row of its study ends as ``superseded`` without computing.
    """

    Status = ReportStatus  # type: ignore[assignment]

    task_name = "workers.tasks.compute_report"
    queue = "default"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="reports")
    fingerprint = models.CharField(max_length=200)
    status = models.CharField(  # the job's status field, with "superseded"
        max_length=16, choices=ReportStatus.choices, default=ReportStatus.PENDING
    )
    report = models.JSONField(null=True, blank=True)
    plots = models.JSONField(
        default=dict, blank=True, help_text="language -> plot name -> base64 SVG"
    )
    n_votes = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True, help_text="compute time of the job")
    enqueued_at = models.DateTimeField(help_text="when the page last asked for this report")

    class Meta:
        ordering = ["study", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "fingerprint"], name="report_unique_study_fingerprint"
            )
        ]

    def __str__(self) -> str:
        return f"report study={self.study_id} {self.status} ({self.fingerprint})"
