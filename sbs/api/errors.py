"""Refusals of the HTTP API as JSON, in the caller's language (``Accept-Language``).

Every refusal is ``{"detail": "..."}``; a form's adds ``errors`` (field -> messages), a
question file's adds ``errors`` (line, message). Nothing in a refusal says whether an object
exists that is not the caller's: those are all the same 404.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError

from adaptation.modelfiles import ModelFileError
from sbs.accounts.services import InviteError
from sbs.api.auth import TooManyAttempts
from sbs.catalog.messages import message_text
from sbs.core.errors import ServiceError
from sbs.questions.importers import QuestionFileError
from sbs.studies.services import GenerationSettingsError
from sbs.voting.services import AlreadyJudged, NoSuchAssignment, VoteError


class FormInvalid(Exception):
    """The page's form refused the request's data."""

    def __init__(self, form: forms.BaseForm) -> None:
        super().__init__("invalid form")
        self.form = form


class Conflict(Exception):
    """The request cannot be done in the object's present state (409)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


def _json(api: NinjaAPI, request: HttpRequest, body: dict[str, Any], status: int) -> HttpResponse:
    return api.create_response(request, body, status=status)


def _not_found(request: HttpRequest, exc: Exception, api: NinjaAPI) -> HttpResponse:
    # Ninja adds Http404's text with DEBUG on ("No Study matches..."): never here.
    return _json(api, request, {"detail": _("Not found.")}, 404)


def _unauthenticated(request: HttpRequest, exc: Exception, api: NinjaAPI) -> HttpResponse:
    response = _json(
        api,
        request,
        {"detail": _("A valid API token is needed: send the header Authorization: Bearer TOKEN.")},
        401,
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


def _too_many(request: HttpRequest, exc: TooManyAttempts, api: NinjaAPI) -> HttpResponse:
    response = _json(
        api,
        request,
        {"detail": _("Too many invalid tokens from your address; try again later.")},
        429,
    )
    response["Retry-After"] = str(exc.retry_after)
    return response


def _form_invalid(request: HttpRequest, exc: FormInvalid, api: NinjaAPI) -> HttpResponse:
    errors = {field: [str(m) for m in messages] for field, messages in exc.form.errors.items()}
    detail = " ".join(m for messages in errors.values() for m in messages)
    return _json(api, request, {"detail": detail, "errors": errors}, 400)


def _generation_settings(
    request: HttpRequest, exc: GenerationSettingsError, api: NinjaAPI
) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    for problem in exc.problems:
        errors.setdefault(problem.field or "__all__", []).append(problem.message)
    return _json(api, request, {"detail": str(exc), "errors": errors}, 400)


def _question_file(request: HttpRequest, exc: QuestionFileError, api: NinjaAPI) -> HttpResponse:
    errors = [{"line": e.line, "message": e.message} for e in exc.errors]
    return _json(api, request, {"detail": str(exc), "errors": errors}, 400)


def _model_file(request: HttpRequest, exc: ModelFileError, api: NinjaAPI) -> HttpResponse:
    return _json(api, request, {"detail": message_text(exc.message)}, 400)


def _refused(request: HttpRequest, exc: Exception, api: NinjaAPI, *, status: int) -> HttpResponse:
    return _json(api, request, {"detail": str(exc)}, status)


def _already_judged(request: HttpRequest, exc: AlreadyJudged, api: NinjaAPI) -> HttpResponse:
    detail = _(
        "You have already judged this pair; your first vote stands. To change it, send the "
        "new choice with PUT to the vote's own address."
    )
    return _json(api, request, {"detail": detail, "assignment": exc.assignment_id}, 409)


def install(api: NinjaAPI) -> None:
    """The API's answers to refusals (the most specific class wins)."""
    handlers: list[tuple[type[Exception], Any]] = [
        (Http404, _not_found),
        (AuthenticationError, _unauthenticated),
        (TooManyAttempts, _too_many),
        (FormInvalid, _form_invalid),
        (GenerationSettingsError, _generation_settings),
        (QuestionFileError, _question_file),
        (ModelFileError, _model_file),
        (ServiceError, partial(_refused, status=400)),
        (InviteError, partial(_refused, status=400)),
        (VoteError, partial(_refused, status=400)),
        (AlreadyJudged, _already_judged),
        (NoSuchAssignment, _not_found),  # not theirs: as if it did not exist
        (Conflict, partial(_refused, status=409)),
    ]
    for exc_class, handler in handlers:
        api.add_exception_handler(exc_class, partial(handler, api=api))
