"""Log-in forms behind the throttle, and the invite page's forms."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from sbs.accounts import throttle


class ThrottledLoginMixin:
    """The throttle inside the form, so that every log-in form (ours and the admin's) counts
    the same failures: while the name or the address is blocked the password is not checked
    and ``retry_after`` says for how many seconds."""

    request: Any
    data: Any
    user_cache: Any
    retry_after = 0

    def clean(self) -> dict[str, Any]:
        username = str(self.data.get("username", ""))
        address = throttle.client_address(self.request)
        self.retry_after = throttle.login_retry_after(username=username, address=address)
        if self.retry_after:
            throttle.login_refusal_record(address=address)
            minutes = max(1, -(-self.retry_after // 60))
            raise forms.ValidationError(
                ngettext(
                    "Too many failed log-in attempts. Try again in %(minutes)d minute.",
                    "Too many failed log-in attempts. Try again in %(minutes)d minutes.",
                    minutes,
                )
                % {"minutes": minutes},
                code="throttled",
            )
        try:
            cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        except forms.ValidationError:
            # A wrong password (or an inactive account) counts; a right password refused
            # for another reason (not staff, for the admin) does not.
            if self.user_cache is None:
                throttle.login_failure_record(username=username, address=address)
            raise
        if self.user_cache is not None:
            throttle.login_success_record(username=username, address=address)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass


class InviteTokenForm(forms.Form):
    """The invite's token: filled in from the link's fragment by static/js/invite.js, or
    pasted by hand (the whole link or the part after ``#``)."""

    token = forms.CharField(
        label=_("Invite code (the part of your link after #, or the whole link)"),
        max_length=500,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def clean_token(self) -> str:
        token: str = self.cleaned_data["token"].strip()
        return token.rsplit("#", 1)[-1].strip()
