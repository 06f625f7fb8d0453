"""Invites: issue, re-issue, redeem, and withdraw a leaked one.

An invite is a one-time token that lets a person without a password choose one. Only its
sha256 is stored on the invite; the link itself is kept only in the session of the
researcher who issued it, so that the study's annotators page shows it again until it is
used, replaced, revoked or expires (then it is dropped from the session too).
The token travels in the link's fragment (``/invite/#<token>``), which browsers never send,
so it never reaches an access log; the invite page posts it in a form field.

Who may be invited: an active account that has never set a password and is neither a
researcher nor staff nor a superuser. An invite is therefore never a password reset: a
researcher may add any account (another researcher's, an administrator's) to a study, and
a reset would hand that account over. Forgotten passwords are an administrator's job
(the admin, or ``manage.py changepassword``).

An invite is valid for ``settings.INVITE_MAX_AGE`` days after it was issued; issuing a new
one for the same account withdraws every earlier one that is still unused.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from sbs.accounts.models import Invite, token_digest
from sbs.accounts.roles import is_researcher


class InviteError(ValueError):
    """An invite that cannot be issued or used; ``str()`` is meant for the person asking.

    ``code``: "invalid" (unknown or withdrawn), "used" (spent, or the password is set),
    "expired", or "refused" (may not issue).
    """

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def invite_max_age() -> timedelta:
    return timedelta(days=settings.INVITE_MAX_AGE)


def invite_path(token: str) -> str:
    """Where an invite link points: the token in the fragment, never in the path or query."""
    return f"{reverse('invite')}#{token}"


def _invalid() -> InviteError:
    return InviteError(
        _(
            "This invite link is not valid: part of it may be missing, or a newer link "
            "replaced it. Check that you opened the whole link; otherwise ask the researcher "
            "who invited you for a new one."
        ),
        code="invalid",
    )


def _used() -> InviteError:
    return InviteError(
        _(
            "This invite link has already been used: the account's password is set. Log in "
            "with your user name and that password. A forgotten password is reset by the "
            "researcher's administrator."
        ),
        code="used",
    )


def _expired() -> InviteError:
    return InviteError(
        _("This invite link has expired. Ask the researcher who invited you for a new link."),
        code="expired",
    )


def _refusal(user: User) -> str | None:
    """Why this account may not be invited, or None."""
    name = user.get_username()
    if not user.is_active:
        return _("%(name)s is deactivated.") % {"name": name}
    if user.is_staff or is_researcher(user):
        return _(
            "%(name)s is a researcher or an administrator: invites are only for annotators."
        ) % {"name": name}
    if user.has_usable_password():
        return _(
            "%(name)s has already set a password, and an invite would reset it. A forgotten "
            "password is reset by an administrator."
        ) % {"name": name}
    return None


def invite_issue(*, user: User, created_by: User | None) -> str:
    """A new one-time token for ``user``; every earlier unused invite of theirs is withdrawn.

    Returns the token, to be shown (as ``invite_path(token)``) and never stored here.
    """
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        # The account's row is locked: a redeem (which sets the password) and a re-issue of
        # the same account run one after the other, each seeing the other's outcome.
        user = get_user_model().objects.select_for_update().get(pk=user.pk)
        refusal = _refusal(user)
        if refusal:
            raise InviteError(refusal, code="refused")
        Invite.objects.filter(user=user, used_at__isnull=True).delete()
        Invite.objects.create(user=user, token_sha256=token_digest(token), created_by=created_by)
    return token


def _check_may_manage(*, study: Any, user: User, requested_by: User) -> None:
    """A researcher manages the invites of annotators of their own studies only, and only of
    accounts that annotate no other researcher's study: otherwise one researcher could
    claim (or cut off) an account that votes in another researcher's study."""
    name = user.get_username()
    if study.owner_id != requested_by.pk or not study.annotators.filter(pk=user.pk).exists():
        raise InviteError(
            _("%(name)s is not an annotator of this study.") % {"name": name}, code="refused"
        )
    if user.annotated_studies.exclude(owner_id=requested_by.pk).exists():
        raise InviteError(
            _(
                "%(name)s also annotates another researcher's study; ask an administrator "
                "for a new link."
            )
            % {"name": name},
            code="refused",
        )


def invite_reissue(*, study: Any, user: User, requested_by: User) -> str:
    """A researcher's new link for an annotator of their study (the old one stops working)."""
    _check_may_manage(study=study, user=user, requested_by=requested_by)
    return invite_issue(user=user, created_by=requested_by)


def invite_revoke(*, study: Any, user: User, requested_by: User) -> bool:
    """Withdraw an annotator's unused link (sent to the wrong address, say); True when there
    was one. A new link can be issued afterwards."""
    _check_may_manage(study=study, user=user, requested_by=requested_by)
    deleted, _by_model = Invite.objects.filter(user=user, used_at__isnull=True).delete()
    return bool(deleted)


def invite_pending(*, token: str) -> Invite:
    """The unused, unexpired invite this token opens, with its user; else ``InviteError``."""
    invite = Invite.objects.select_related("user").filter(token_sha256=token_digest(token)).first()
    if invite is None or not invite.user.is_active:
        raise _invalid()
    if invite.used_at is not None or invite.user.has_usable_password():
        raise _used()
    if invite.created_at <= timezone.now() - invite_max_age():
        raise _expired()
    return invite


def invite_redeem(*, token: str, password: str) -> User:
    """Set the invited account's password and spend the invite; returns the user.

    Raises ``InviteError`` for a token that no longer opens anything, and Django's
    ``ValidationError`` for a password the validators refuse (the invite is then kept).
    """
    with transaction.atomic():
        invite = invite_pending(token=token)
        user = get_user_model().objects.select_for_update().get(pk=invite.user_id)
        if user.has_usable_password():  # set meanwhile
            raise _used()
        password_validation.validate_password(password, user)
        spent = Invite.objects.filter(
            pk=invite.pk,
            used_at__isnull=True,
            created_at__gt=timezone.now() - invite_max_age(),
        ).update(used_at=timezone.now())
        if not spent:  # used, withdrawn or expired meanwhile
            raise _invalid()
        user.set_password(password)
        user.save(update_fields=["password"])
    return user


def invite_withdraw(*, token: str) -> bool:
    """Withdraw the unused invite this token opens (a token seen in a request line is in an
    access log somewhere). True when one was withdrawn."""
    deleted, _by_model = Invite.objects.filter(
        token_sha256=token_digest(token), used_at__isnull=True
    ).delete()
    return bool(deleted)
