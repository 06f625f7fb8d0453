"""Roles: researchers (a group, or superusers) own studies, models and reports; everyone
else with an account is an annotator who sees only their own assignments."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, Group, User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from sbs.accounts.models import RESEARCHERS_GROUP


class AuthedRequest(HttpRequest):
    """The request of a view behind ``login_required`` or ``researcher_required``."""

    user: User


def is_researcher(user: User | AnonymousUser) -> bool:
    """A superuser or a member of the researchers group. A user loaded by the session
    (:class:`sbs.accounts.backends.RoleAwareBackend`) carries the answer already."""
    if not user.is_authenticated:
        return False
    known = getattr(user, "in_researchers", None)
    if known is not None:
        return bool(user.is_superuser or known)
    return bool(user.is_superuser or user.groups.filter(name=RESEARCHERS_GROUP).exists())


def make_researcher(user: User) -> None:
    group, _ = Group.objects.get_or_create(name=RESEARCHERS_GROUP)
    user.groups.add(group)
    if hasattr(user, "in_researchers"):
        user.in_researchers = True


def friendly_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A 404 or 403 raised inside the view answers with the site's own page (templates/404.html,
    403.html), in the visitor's language, with DEBUG on as well (Django would otherwise show
    its technical page, which lists every URL of the site)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Http404:
            return render(request, "404.html", status=404)
        except PermissionDenied:
            return render(request, "403.html", status=403)

    return wrapped


def annotator_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Logged in (any account); errors as the site's own pages."""
    return friendly_errors(login_required(view))


def researcher_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Logged in and a researcher, else 404 (a page's existence is not disclosed)."""

    @friendly_errors
    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_researcher(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped
