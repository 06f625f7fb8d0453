"""Question sets and their questions (imported from CSV or JSON Lines)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


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
