"""Serve the site the way the demo does: gunicorn, several processes (static files by whitenoise)."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


def gunicorn_argv(addrport: str, workers: int, threads: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "sbs.wsgi:application",
        "--bind", addrport, "--workers", str(workers), "--threads", str(threads),
        "--worker-class", "gthread", "--access-logfile", "-", "--log-level", "warning",
        # Longer than a browser's pause between pages: with gunicorn's 2 s default a
        # reused connection can be closed just as the next request is sent.
        "--keep-alive", "75",
    ]  # fmt: skip


class Command(BaseCommand):
    help = "Serve the site with gunicorn (the demo's server); Ctrl-C stops it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2))
        parser.add_argument("--threads", type=int, default=8)

    def handle(self, *args: Any, addrport: str, workers: int, threads: int, **opts: Any) -> None:
        os.execv(sys.executable, gunicorn_argv(addrport, workers, threads))
