"""The one job lifecycle: every background job row (generation run, adaptation, model
import, ...) inherits :class:`Job` and is driven by :mod:`sbs.core.jobs`."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    RUNNING = "running", _("running")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


class Job(models.Model):
    """Status, attempts, who runs it, its lease and fencing token, progress and timings.

    A worker holds a job through a *lease*: ``lease_expires_at`` is pushed forward by its
    heartbeat, and ``fence`` grows by one at every claim. Every write a worker makes is
    conditional on the fence it claimed with, so a worker whose lease was taken over (it hung,
    or its host stalled) writes nothing when it wakes.
    """

    Status = JobStatus

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True, default="")
    device = models.CharField(max_length=64, blank=True, default="")
    fence = models.PositiveBigIntegerField(
        default=0, help_text="fencing token: grows by one at every claim"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=300, blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    # The Celery task that runs this kind of job, by name, and its queue.
    task_name: str = ""
    queue: str = "gpu"

    @property
    def active(self) -> bool:
        return self.status in (JobStatus.PENDING, JobStatus.RUNNING)
