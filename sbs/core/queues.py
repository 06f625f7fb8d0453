from enum import StrEnum


class Queue(StrEnum):
    """Every queue the project uses. GPU work never shares a queue with light work."""

    GPU = "gpu"
    DEFAULT = "default"
