"""``celery -A workers``: the project's app with the tasks and the worker's lease keeper."""

from __future__ import annotations

from sbs.celery import app
from workers import runtime  # noqa: F401  (connects the worker's signals)

__all__ = ["app"]
