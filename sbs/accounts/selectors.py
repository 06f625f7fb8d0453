"""Reads about accounts: where each annotator of a study stands with their invite."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.utils import timezone

from sbs.accounts.models import Invite
from sbs.accounts.services import invite_max_age


@dataclass(frozen=True)
class AccountInvite:
    """``state``: "password" (has set one), "invited" (an unused link, valid until
    ``expires_at``), "expired" (its link expired), "none" (no link: imported, or withdrawn)."""

    user: User
    state: str
    expires_at: datetime | None = None

    @property
    def can_reinvite(self) -> bool:
        return self.state != "password"


def accounts_with_invites(*, users: Iterable[User]) -> list[AccountInvite]:
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
            rows.append(AccountInvite(user, "invited" if expires > now else "expired", expires))
    return rows
