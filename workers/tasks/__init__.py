"""Every Celery task, one module per job kind; each is thin: claim, call, store, finish."""

from workers.tasks.adaptation import adapt_model
from workers.tasks.generation import generate_run

__all__ = ["adapt_model", "generate_run"]
