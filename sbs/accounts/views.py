from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from sbs.accounts import services
from sbs.accounts.forms import InviteTokenForm, ThrottledAuthenticationForm
from sbs.accounts.roles import is_researcher


class LoginView(auth_views.LoginView):
    """Django's login (it cycles the session key) behind the throttle in its form.

    While the name, the address or the pair is blocked, a POST is answered 429 with a
    message on the login page, and the password is not even checked. The admin's log-in
    uses the same form (``sbs/accounts/admin.py``), so both count the same failures.
    """

    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if form.retry_after:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    if is_researcher(request.user):
        return redirect("studies:list")
    return redirect("voting:my_studies")


def _invite_problem(request: HttpRequest, error: services.InviteError) -> HttpResponse:
    """A link that opens nothing, as a page of its own: what happened and what to do (log in,
    ask for a new link, or paste the whole link again). Rendered here, not raised, so it is
    the same page with DEBUG on."""
    status = 410 if error.code == "expired" else 404
    return render(
        request,
        "accounts/invite.html",
        {
            "token_form": InviteTokenForm() if error.code == "invalid" else None,
            "problem": str(error),
            "problem_code": error.code,
        },
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest) -> HttpResponse:
    """The invite page, ``/invite/#<token>``: the token never travels in a URL.

    GET: a form for the token (static/js/invite.js fills it from the fragment and sends it;
    without JavaScript it is pasted). POST with the token: who is invited, and the password
    form. POST with the token and a password: the password is set, the invite is spent, and
    the person is logged in.
    """
    if request.method == "GET":
        return render(request, "accounts/invite.html", {"token_form": InviteTokenForm()})
    token_form = InviteTokenForm(request.POST)
    if not token_form.is_valid():
        return render(request, "accounts/invite.html", {"token_form": token_form}, status=400)
    token = token_form.cleaned_data["token"]
    try:
        user = services.invite_pending(token=token).user
    except services.InviteError as exc:
        return _invite_problem(request, exc)
    form = SetPasswordForm(user, request.POST if "new_password1" in request.POST else None)
    if form.is_bound and form.is_valid():
        try:
            user = services.invite_redeem(token=token, password=form.cleaned_data["new_password1"])
        except services.InviteError as exc:
            return _invite_problem(request, exc)
        except ValidationError as exc:
            form.add_error("new_password2", exc)
        else:
            login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
            messages.success(
                request,
                _("Your password is set. Your user name is %(name)s: you log in with it.")
                % {"name": user.get_username()},
            )
            return redirect("home")
    return render(request, "accounts/invite.html", {"form": form, "token": token, "invited": user})


@never_cache
def invite_old_link(request: HttpRequest, token: str) -> HttpResponse:
    """``/invite/<token>/``, the old form of the link, answers 404 with a message: the token
    is in the request line, hence in access logs, so it is withdrawn, never accepted (a
    redirect to the fragment form could not undo the logging)."""
    services.invite_withdraw(token=token)
    return render(
        request,
        "accounts/invite.html",
        {
            "problem": _(
                "Invite links of this form no longer work. Ask the researcher who invited "
                "you for a new link."
            ),
            "problem_code": "old",
        },
        status=404,
    )
