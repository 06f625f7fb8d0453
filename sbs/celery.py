"""The Celery app, configured from Django's settings.

The web side only sends tasks by name through it (``sbs.core.jobs.enqueue``); the tasks
live in ``workers`` (start a GPU worker with ``celery -A workers worker -Q gpu -c 1 -P solo``).
"""

from __future__ import annotations

import os

from celery import Celery
from kombu.entity import Queue as KombuQueue

from sbs.core.queues import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sbs.settings")


app = Celery("sbs", include=["workers.tasks"])
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
