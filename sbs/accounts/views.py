from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import SetPasswordForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from sbs.accounts import throttle
from sbs.accounts.models import Invite, token_digest
from sbs.accounts.roles import is_researcher


class LoginView(auth_views.LoginView):
    """Django's login (it cycles the session key) behind a throttle on failures.

    While the user name or the client address is blocked, a POST is answered 429 with a
    message on the login page, and the password is not even checked.
    """

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        wait = throttle.login_retry_after(
            username=request.POST.get("username", ""), address=throttle.client_address(request)
        )
        if not wait:
            return super().post(request, *args, **kwargs)
        minutes = max(1, -(-wait // 60))
        messages.error(
            request,
            ngettext(
                "Too many failed log-in attempts. Try again in %(minutes)d minute.",
                "Too many failed log-in attempts. Try again in %(minutes)d minutes.",
                minutes,
            )
            % {"minutes": minutes},
        )
        response = self.render_to_response(self.get_context_data(form=self.get_form_class()()))
        response.status_code = 429
        response["Retry-After"] = str(wait)
        return response

    def form_invalid(self, form: Any) -> HttpResponse:
        throttle.login_failure_record(
            username=self.request.POST.get("username", ""),
            address=throttle.client_address(self.request),
        )
        return super().form_invalid(form)

    def form_valid(self, form: Any) -> HttpResponse:
        throttle.login_success_record(username=form.get_user().get_username())
        return super().form_valid(form)


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
    form = SetPasswordForm(invite.user, request.POST or None)
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
