"""The Celery app. Start a GPU worker with: ``celery -A workers worker -Q gpu -c 1``."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init, worker_process_init
from kombu import Queue as KombuQueue

from workers.queues import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sbs.settings")


@worker_init.connect  # the solo pool runs tasks in the main process
@worker_process_init.connect  # the prefork pool in its children
def _limit_torch_threads(**_: object) -> None:
    """Apply TORCH_NUM_THREADS in every process that runs tasks, before any task runs."""
    from django.conf import settings

    if settings.TORCH_NUM_THREADS > 0:
        import torch

        torch.set_num_threads(settings.TORCH_NUM_THREADS)


app = Celery("sbs", include=["workers.tasks", "sbs.analysis.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=[KombuQueue(q.value) for q in Queue],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue="default",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
