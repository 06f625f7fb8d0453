import sys
from collections.abc import Sequence
from enum import StrEnum


class Queue(StrEnum):
    """Every queue the project uses. GPU work never shares a queue with light work."""

    GPU = "gpu"
    DEFAULT = "default"


def worker_argv(queues: Sequence[Queue], name: str, *extra: str) -> list[str]:
    """The command line of one worker process: solo pool, one task at a time (one device)."""
    return [
        sys.executable, "-m", "celery", "-A", "workers", "worker",
        "-Q", ",".join(queues), "-c", "1", "-P", "solo", "-l", "info", "-n", name, *extra,
    ]  # fmt: skip
