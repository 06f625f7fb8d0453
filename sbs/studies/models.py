"""Studies, generation runs, answers, pairs and assignments."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from sbs.catalog.models import ModelEntry
from sbs.core.models import Job
from sbs.questions.models import Question, QuestionSet
from sbs.studies.blinding import new_plan_salt


def with_systems(studies: models.QuerySet[Study] | None = None) -> models.QuerySet[Study]:
    """``studies`` (all of them by default) with every system read along
    (:meth:`Study.systems` then makes no query)."""
    studies = Study.objects.all() if studies is None else studies
    return studies.select_related("model_a", "model_b").prefetch_related("more_systems__model")


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        GENERATING = "generating", _("generating answers")
        OPEN = "open", _("open for votes")
        CLOSED = "closed", _("closed")

    name = models.CharField(_("name"), max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_studies"
    )
    question_set = models.ForeignKey(QuestionSet, on_delete=models.PROTECT, related_name="studies")
    model_a = models.ForeignKey(ModelEntry, on_delete=models.PROTECT, related_name="+")
    model_b = models.ForeignKey(ModelEntry, on_delete=models.PROTECT, related_name="+")
    generation = models.JSONField(default=dict, blank=True)
    seed = models.IntegerField(default=0, help_text="generation seed (public)")
    # The secret half of the assignment plan (see sbs.studies.blinding); never shown.
    plan_salt = models.CharField(max_length=64, default=new_plan_salt, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    judgments_per_pair = models.PositiveIntegerField(
        null=True, blank=True, help_text="empty: every annotator judges every pair"
    )
    repeat_share = models.FloatField(default=0.0)
    pair_budget = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="pairs to judge (a question and two systems each); empty: every pair of "
        "systems on every question",
    )
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="annotated_studies"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(
                condition=~Q(model_a=F("model_b")), name="study_two_distinct_models"
            ),
            models.CheckConstraint(
                condition=Q(repeat_share__gte=0) & Q(repeat_share__lte=0.5),
                name="study_repeat_share_range",
            ),
            models.CheckConstraint(
                condition=Q(judgments_per_pair__isnull=True) | Q(judgments_per_pair__gte=1),
                name="study_judgments_positive",
            ),
            models.CheckConstraint(
                condition=Q(pair_budget__isnull=True) | Q(pair_budget__gte=1),
                name="study_pair_budget_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def systems(self) -> list[ModelEntry]:
        """Every system the study compares, in its order: model A, model B, then the others
        (:class:`StudySystem`; prefetch ``more_systems__model`` to read them without a query)."""
        return [self.model_a, self.model_b, *(s.model for s in self.more_systems.all())]


MAX_SYSTEMS = 12


class StudySystem(models.Model):
    """A third or later system of a study (the first two are ``model_a`` and ``model_b``)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="more_systems")
    model = models.ForeignKey(ModelEntry, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField(help_text="2 for the third system, and so on")

    class Meta:
        ordering = ["study", "position"]
        constraints = [
            models.UniqueConstraint(fields=["study", "model"], name="system_unique_study_model"),
            models.UniqueConstraint(
                fields=["study", "position"], name="system_unique_study_position"
            ),
            models.CheckConstraint(
                condition=Q(position__gte=2) & Q(position__lt=MAX_SYSTEMS),
                name="system_position_range",
            ),
        ]

    def __str__(self) -> str:
        return f"system {self.position} of study {self.study_id}"


class GenerationRun(Job):
    """One model's answers to a study's questions (a GPU-queue job)."""

    task_name = "workers.tasks.generate_run"
    queue = "gpu"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="runs")
    model = models.ForeignKey(ModelEntry, on_delete=models.PROTECT, related_name="runs")
    done_count = models.PositiveIntegerField(default=0)
    total_count = models.PositiveIntegerField(default=0)
    load_seconds = models.FloatField(null=True, blank=True)
    reference_speed = models.JSONField(
        null=True,
        blank=True,
        help_text="forced decoding and one pass over the fixed reference text "
        "(adaptation.speed.SpeedResult), timed in the generation's process after its answers",
    )

    class Meta:
        ordering = ["study", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "model"], name="run_unique_study_model")
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"


class Answer(models.Model):
    class StopReason(models.TextChoices):
        EOS = "eos", _("end of sequence")
        LENGTH = "length", _("length limit")
        UNKNOWN = "unknown", _("not recorded")  # an imported answer

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="answers")
    text = models.TextField()
    # Null: not recorded (an imported answer whose file gave no token counts or time).
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    new_tokens = models.PositiveIntegerField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True, help_text="generation wall time")
    tokenize_seconds = models.FloatField(default=0.0)
    batch_size = models.PositiveIntegerField(default=1)
    stop_reason = models.CharField(max_length=16, choices=StopReason.choices)
    self_identifies = models.BooleanField(default=False)
    # A flagged answer reaches annotators only once a researcher has reviewed it.
    reviewed = models.BooleanField(default=False)
    excluded = models.BooleanField(default=False)
    fence = models.PositiveBigIntegerField(default=0, help_text="lease fence of the writer")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "question__position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "question"], name="answer_unique_run_question")
        ]

    def __str__(self) -> str:
        return f"answer run={self.run_id} question={self.question_id}"

    @property
    def tokens_per_second(self) -> float | None:
        """new tokens / seconds; None where either was not recorded or no time passed."""
        if self.new_tokens is None or not self.seconds or self.seconds <= 0:
            return None
        return self.new_tokens / self.seconds

    @property
    def chars_per_second(self) -> float | None:
        """characters / seconds; None where the time was not recorded or is zero."""
        if not self.seconds or self.seconds <= 0:
            return None
        return len(self.text) / self.seconds


class Pair(models.Model):
    """One question answered by two of the study's systems, to be judged side by side.

    ``model_x`` comes before ``model_y`` in the study's order; which one an annotator sees
    on the left is the assignment's (``Assignment.left_model``)."""

    class Status(models.TextChoices):
        SHOWN = "shown", _("shown")
        HELD = "held", _("held for review")  # an answer names a model, or is being redone
        WITHDRAWN = "withdrawn", _("withdrawn")  # an answer was excluded

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="pairs")
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="+")
    model_x = models.ForeignKey(ModelEntry, on_delete=models.PROTECT, related_name="+")
    model_y = models.ForeignKey(ModelEntry, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SHOWN)
    regenerations = models.PositiveIntegerField(default=0)  # moves the sampling seed

    class Meta:
        ordering = ["study", "question__position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "question", "model_x", "model_y"],
                name="pair_unique_study_question_systems",
            ),
            models.CheckConstraint(
                condition=~Q(model_x=F("model_y")), name="pair_two_distinct_systems"
            ),
        ]

    def __str__(self) -> str:
        return f"pair study={self.study_id} question={self.question_id}"

    def other(self, model_id: int) -> int:
        """The id of the pair's system that is not ``model_id``."""
        return self.model_y_id if model_id == self.model_x_id else self.model_x_id


class Assignment(models.Model):
    """One annotator's judgment slot for one pair, with the side each model is shown on."""

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="assignments")
    # PROTECT: deleting an account must never delete the votes it cast (deactivate it).
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments"
    )
    left_model = models.ForeignKey(ModelEntry, on_delete=models.PROTECT, related_name="+")
    order = models.PositiveIntegerField()
    repeat_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="repeat"
    )

    class Meta:
        ordering = ["annotator", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["pair", "annotator"],
                condition=Q(repeat_of__isnull=True),
                name="assignment_unique_first_judgment",
            ),
        ]
        indexes = [models.Index(fields=["annotator", "order"])]

    def __str__(self) -> str:
        return f"assignment {self.pk} pair={self.pair_id} annotator={self.annotator_id}"


class FormSubmission(models.Model):
    """A form token spent by the POST that created something (a study, annotators).

    Every creating form carries a random token; the first POST with it creates and records
    where it went, a second one (a reload, a double click, a retried request) is sent there
    instead of creating again. The token is claimed in the creating transaction, so a
    concurrent duplicate waits for the first and then sees its row.
    """

    token = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    result_url = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"form submission {self.pk} -> {self.result_url}"
