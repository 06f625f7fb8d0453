"""The model catalog: registered models, and the jobs that make them (adaptation, import)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from sbs.catalog.messages import stored_text
from sbs.core.models import Job


class ModelEntryQuerySet(models.QuerySet["ModelEntry"]):
    def ready(self) -> ModelEntryQuerySet:
        """Entries with their files installed (not names reserved by a running job)."""
        return self.filter(ready=True)

    def with_files(self) -> ModelEntryQuerySet:
        """Entries that are model files (what can be adapted, scored or downloaded), not
        systems known only by their imported answers."""
        return self.exclude(kind=ModelEntry.Kind.ANSWERS)


class ModelEntry(models.Model):
    class Kind(models.TextChoices):
        HF_FOLDER = "hf_folder", _("Hugging Face folder")
        GGUF = "gguf", _("GGUF file")
        # A system known by its answers alone (vLLM, an API model, an earlier run): no files.
        ANSWERS = "answers", _("imported answers")
        # Task adapters on its parent with a training-free gate (sbs.catalog.ensembles).
        ENSEMBLE = "ensemble", _("ensemble of task adapters")

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    path = models.CharField(max_length=1000, help_text="relative to MODEL_STORE, or absolute")
    architecture = models.CharField(max_length=200, blank=True, default="")
    tokenizer_class = models.CharField(max_length=200, blank=True, default="")
    total_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    recipe = models.JSONField(default=dict, blank=True)
    # False: the name is reserved by an adaptation job that will install the files here.
    ready = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ModelEntryQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_own_weights(self) -> bool:
        """A model folder or GGUF file: what can be adapted, or carry an ensemble."""
        return self.kind in WEIGHT_KINDS

    @property
    def is_imported(self) -> bool:
        """A system whose answers were imported: nothing to load, adapt or generate with."""
        return self.kind == ModelEntry.Kind.ANSWERS


# Entries with weights of their own (not imported answers, not an ensemble on a parent).
WEIGHT_KINDS = (ModelEntry.Kind.HF_FOLDER, ModelEntry.Kind.GGUF)


class ImportedAnswer(models.Model):
    """A pre-generated answer of a system to one question (``sbs.catalog.answer_files``).

    A study comparing the system copies these into its run instead of generating. Token
    counts and seconds are null where the file did not record them (no speed is invented).
    """

    system = models.ForeignKey(
        ModelEntry, on_delete=models.PROTECT, related_name="imported_answers"
    )
    question = models.ForeignKey(
        "questions.Question", on_delete=models.PROTECT, related_name="imported_answers"
    )
    text = models.TextField()
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    new_tokens = models.PositiveIntegerField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["system", "question__position"]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "question"], name="imported_answer_unique_system_question"
            ),
            models.CheckConstraint(
                condition=models.Q(seconds__isnull=True) | models.Q(seconds__gte=0),
                name="imported_answer_seconds_nonnegative",
            ),
        ]

    def __str__(self) -> str:
        return f"imported answer system={self.system_id} question={self.question_id}"


class AdaptationJob(Job):
    """Make a child of a registered model and register it: adapt it to Russian (the research
    recipe), or build an ensemble of task adapters on it (``sbs.catalog.ensembles``)."""

    class Method(models.TextChoices):
        RUSSIAN = "russian", _("adaptation to Russian")
        ENSEMBLE = "ensemble", _("ensemble of task adapters")

    task_name = "workers.tasks.adapt_model"
    queue = "gpu"

    method = models.CharField(max_length=16, choices=Method.choices, default=Method.RUSSIAN)

    parent = models.ForeignKey(ModelEntry, on_delete=models.PROTECT, related_name="adaptation_jobs")
    name = models.CharField(_("name of the adapted model"), max_length=200)
    config = models.JSONField(default=dict)
    step = models.CharField(max_length=32, blank=True, default="")
    summary = models.JSONField(default=dict, blank=True)
    result = models.OneToOneField(
        ModelEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="made_by_job"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    @property
    def result_kind(self) -> str:
        """The kind of model entry the job's method makes (its name is reserved with it)."""
        return RESULT_KINDS[self.Method(self.method)]

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"adapt {self.parent_id} -> {self.name} ({self.status})"


class ModelImportJob(Job):
    """Register a model from a path on the server: a worker checks and copies the files into
    the entry reserved for it (the web request only records the wish)."""

    task_name = "workers.tasks.import_model"
    queue = "default"

    name = models.CharField(_("name"), max_length=200)
    server_path = models.CharField(max_length=1000)
    parent = models.ForeignKey(
        ModelEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    result = models.OneToOneField(
        ModelEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="made_by_import"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # A refusal (model files, paths) as {"msgid", "params"}, translated when the page shows
    # it; ``error`` keeps the text as the worker raised it.
    refusal = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import {self.name} ({self.status})"

    @property
    def error_text(self) -> str:
        """The error in the active language where it was kept translatable, else as stored."""
        return stored_text(self.refusal, self.error) if self.error else ""


# What each method of an adaptation job makes.
RESULT_KINDS: dict[AdaptationJob.Method, str] = {
    AdaptationJob.Method.RUSSIAN: ModelEntry.Kind.HF_FOLDER,
    AdaptationJob.Method.ENSEMBLE: ModelEntry.Kind.ENSEMBLE,
}
