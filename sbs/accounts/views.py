from __future__ import annotations

from django import forms
from django.contrib.auth import login
from django.contrib.auth.forms import SetPasswordForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from sbs.accounts.models import Invite, token_digest
from sbs.accounts.roles import is_researcher


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    if is_researcher(request.user):
        return redirect("studies:list")
    return redirect("voting:my_studies")


@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """A one-time link: the annotator chooses a password and is logged in."""
    invite = (
        Invite.objects.select_related("user")
        .filter(token_sha256=token_digest(token), used_at__isnull=True)
        .first()
    )
    if invite is None:
        raise Http404
    form: forms.Form = SetPasswordForm(invite.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        used = Invite.objects.filter(pk=invite.pk, used_at__isnull=True).update(
            used_at=timezone.now()
        )
        if not used:
            raise Http404
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    return render(request, "accounts/invite.html", {"form": form, "invited": invite.user})
