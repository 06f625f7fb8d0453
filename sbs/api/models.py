"""Personal API tokens: a researcher's scripts (or an annotator's client) call the HTTP API
with ``Authorization: Bearer <token>``.

Only the sha256 of a token is stored, beside a short prefix that is shown to tell tokens
apart; the token itself is shown once, when it is created (``sbs.api.services``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100)
    # The token's first characters ("sbs_" and 8 more): not secret, shown in lists and used
    # to find the candidates whose digest is then compared in constant time.
    prefix = models.CharField(max_length=16, db_index=True)
    token_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"API token {self.prefix}… of user {self.user_id}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None
