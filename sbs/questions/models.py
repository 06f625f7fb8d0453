"""Question sets and their questions (imported from CSV or JSON Lines); multiple-choice
benchmarks, their runs on a model and every item's result (the forgetting metrics)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from sbs.core.models import Job


class QuestionSet(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    language = models.CharField(_("language"), max_length=16, default="ru")
    sha256 = models.CharField(max_length=64, help_text="sha256 of the canonical JSON content")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Question(models.Model):
    question_set = models.ForeignKey(
        QuestionSet, on_delete=models.CASCADE, related_name="questions"
    )
    external_id = models.CharField(max_length=200)
    text = models.TextField()
    category = models.CharField(max_length=100, blank=True, default="")
    reference = models.TextField(blank=True, default="")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["question_set", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["question_set", "external_id"], name="question_unique_external_id"
            ),
            models.UniqueConstraint(
                fields=["question_set", "position"], name="question_unique_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.question_set_id}:{self.external_id}"


# ------------------------------------------------------------------ benchmarks (forgetting)


class Benchmark(models.Model):
    """A multiple-choice set scored by log-likelihood (``adaptation/scoring.py``): the
    forgetting metrics beside the verdict."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    language = models.CharField(_("language"), max_length=16, default="ru")
    source = models.CharField(max_length=300, blank=True, default="", help_text="file or set")
    license = models.CharField(max_length=100, blank=True, default="")
    sha256 = models.CharField(max_length=64, help_text="sha256 of the canonical JSON content")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BenchmarkItem(models.Model):
    """A question (with an optional context), its choices and the 0-based gold choice."""

    benchmark = models.ForeignKey(Benchmark, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=200)
    position = models.PositiveIntegerField()
    category = models.CharField(max_length=100, blank=True, default="")
    context = models.TextField(blank=True, default="")
    question = models.TextField()
    choices = models.JSONField(help_text="list of >= 2 strings")
    answer = models.PositiveSmallIntegerField(help_text="0-based index of the gold choice")

    class Meta:
        ordering = ["benchmark", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["benchmark", "external_id"], name="benchmark_item_unique_external_id"
            ),
            models.UniqueConstraint(
                fields=["benchmark", "position"], name="benchmark_item_unique_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.benchmark_id}:{self.external_id}"


class PromptFormat(models.TextChoices):
    CLOZE = "cloze", _("cloze (the choice's text)")
    LETTERED = "lettered", _("lettered (A, B, C, …)")


class BenchmarkRun(Job):
    """One model scored on one benchmark in one prompt format, on the GPU queue; every
    item's result is stored (:class:`BenchmarkResult`), so any aggregate can be computed
    again and bootstrapped."""

    task_name = "workers.tasks.run_benchmark"
    queue = "gpu"

    benchmark = models.ForeignKey(Benchmark, on_delete=models.CASCADE, related_name="runs")
    model = models.ForeignKey(
        "catalog.ModelEntry", on_delete=models.PROTECT, related_name="benchmark_runs"
    )
    prompt_format = models.CharField(
        max_length=16, choices=PromptFormat.choices, default=PromptFormat.CLOZE
    )
    done_count = models.PositiveIntegerField(default=0)
    total_count = models.PositiveIntegerField(default=0)
    load_seconds = models.FloatField(null=True, blank=True)
    score_seconds = models.FloatField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text="acc, acc_norm by category")
    text_bits = models.JSONField(
        null=True,
        blank=True,
        help_text="the shipped held-out texts scored in the same run: category -> "
        "{chars: [per paragraph], bits: [per paragraph]}",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "benchmark", "prompt_format"], name="benchmark_run_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} on {self.benchmark_id} ({self.prompt_format}, {self.status})"


class BenchmarkResult(models.Model):
    """One item of a run: the log-likelihood (nats) of each choice, the tokens and
    characters of each scored continuation, and the two predictions."""

    run = models.ForeignKey(BenchmarkRun, on_delete=models.CASCADE, related_name="results")
    item = models.ForeignKey(BenchmarkItem, on_delete=models.CASCADE, related_name="+")
    logprobs = models.JSONField()
    tokens = models.JSONField()
    chars = models.JSONField()
    predicted = models.PositiveSmallIntegerField()
    predicted_norm = models.PositiveSmallIntegerField()
    correct = models.BooleanField()
    correct_norm = models.BooleanField()

    class Meta:
        ordering = ["run", "item__position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "item"], name="benchmark_result_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.item_id}"
