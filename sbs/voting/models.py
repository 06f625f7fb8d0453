"""Votes and their history."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from sbs.studies.models import Assignment


class Choice(models.TextChoices):
    LEFT = "left", _("left is better")
    RIGHT = "right", _("right is better")
    TIE = "tie", _("tie")
    BOTH_BAD = "both_bad", _("both are bad")


class Vote(models.Model):
    """One vote per assignment (a database constraint); a change writes a revision first."""

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="vote")
    choice = models.CharField(max_length=16, choices=Choice.choices)
    comment = models.TextField(blank=True, default="")
    seconds_on_page = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"vote {self.choice} on assignment {self.assignment_id}"


class VoteRevision(models.Model):
    vote = models.ForeignKey(Vote, on_delete=models.CASCADE, related_name="revisions")
    choice = models.CharField(max_length=16, choices=Choice.choices)
    comment = models.TextField(blank=True, default="")
    seconds_on_page = models.FloatField()
    replaced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["replaced_at"]

    def __str__(self) -> str:
        return f"revision of vote {self.vote_id}: {self.choice}"
