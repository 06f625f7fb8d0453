"""Every Celery task, one module per job kind; each is thin: claim, call, store, finish."""

from workers.tasks.adaptation import adapt_model
from workers.tasks.benchmark import run_benchmark as run_benchmark
from workers.tasks.generation import generate_run
from workers.tasks.model_import import import_model
from workers.tasks.report import compute_report

__all__ = ["adapt_model", "compute_report", "generate_run", "import_model"]
