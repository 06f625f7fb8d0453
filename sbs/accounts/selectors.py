"""Reads about accounts: where each annotator of a study stands with their invite."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.utils import timezone

from sbs.accounts.models import Invite, token_digest
from sbs.accounts.services import invite_max_age


@dataclass(frozen=True)
class AccountInvite:
    """``state``: "password" (has set one), "invited" (an unused link, valid until
    ``expires_at``), "expired" (its link expired), "none" (no link: imported, or withdrawn).
    ``token``: the live invite's token when the caller holds it (the researcher's session
    keeps the links it issued), so its link can be shown again; never read from the
    database, which stores digests only."""

    user: User
    state: str
    expires_at: datetime | None = None
    token: str | None = None

    @property
    def can_reinvite(self) -> bool:
        return self.state != "password"


def accounts_with_invites(
    *, users: Iterable[User], tokens: Mapping[int, str] | None = None
) -> list[AccountInvite]:
    """Each user's invite state, in the order given; ``tokens`` (user id -> token) are
    matched against the live invites, and only a token that still opens one is returned."""
    tokens = tokens or {}
    users = list(users)
    pending = {
        invite.user_id: invite
        for invite in Invite.objects.filter(
            user__in=[u.pk for u in users], used_at__isnull=True
        ).order_by("created_at")
    }
    now, max_age = timezone.now(), invite_max_age()
    rows = []
    for user in users:
        invite = pending.get(user.pk)
        if user.has_usable_password():
            rows.append(AccountInvite(user, "password"))
        elif invite is None:
            rows.append(AccountInvite(user, "none"))
        else:
            expires = invite.created_at + max_age
            if expires <= now:
                rows.append(AccountInvite(user, "expired", expires))
                continue
            token = tokens.get(user.pk)
            held = token if token and token_digest(token) == invite.token_sha256 else None
            rows.append(AccountInvite(user, "invited", expires, held))
    return rows
