"""One-time invite links for annotators created in bulk by a researcher."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models

RESEARCHERS_GROUP = "researchers"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Invite(models.Model):
    """Only the sha256 of the token is stored here; the link is kept in the issuing
    researcher's session while it works (``sbs.studies.views``)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token_sha256 = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"invite for user {self.user_id}"
