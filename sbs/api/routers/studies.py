"""Studies, for their owner: list, create, status and progress, annotators and their
invite links, start / close / reopen / retry. The pages' forms and services throughout; a
study that is not the caller's is a 404, as on the pages."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import Resolver404, resolve, reverse
from django.utils.translation import gettext as _
from ninja import HeaderEx, P, Router, Status
from ninja.errors import HttpError

from sbs.accounts import services as account_services
from sbs.api import selectors
from sbs.api import services as api_services
from sbs.api.auth import caller
from sbs.api.errors import Conflict, FormInvalid
from sbs.api.schemas import (
    AnnotatorOut,
    AnnotatorsAddedOut,
    AnnotatorsIn,
    Detail,
    FieldErrors,
    InviteLinkOut,
    RetriedOut,
    RevokedOut,
    StudyCreateIn,
    StudyDetailOut,
    StudyOut,
)
from sbs.studies import selectors as study_selectors
from sbs.studies import services as study_services
from sbs.studies.forms import AddAnnotatorsForm, AnnotatorChoiceField, StudyCreateForm
from sbs.studies.models import Study, with_systems

router = Router(tags=["studies"])

IDEMPOTENCY = (
    "Optional, 16 to 64 characters: a request sent again with the same key (a retry after "
    "a lost connection) creates nothing twice."
)


def own_study(request: HttpRequest, study_id: int) -> Study:
    """The caller's own study, else 404 (whether it exists is not disclosed)."""
    return get_object_or_404(
        with_systems().select_related("question_set"),
        pk=study_id,
        owner=caller(request),
    )


def _once_token(key: str | None) -> str:
    """The form token of a creating request: its Idempotency-Key, or a fresh one."""
    if key is None:
        return secrets.token_urlsafe(24)
    if not 16 <= len(key) <= 64:
        raise HttpError(400, _("The Idempotency-Key header must be 16 to 64 characters long."))
    return key


@router.get("", response=list[StudyOut], url_name="study_list")
def study_list(request: HttpRequest) -> list[dict[str, Any]]:
    """The caller's studies, newest first."""
    return [selectors.study_out(s) for s in study_selectors.studies_of(caller(request))]


@router.post(
    "",
    response={200: StudyOut, 201: StudyOut, 400: FieldErrors},
    url_name="study_create",
    openapi_extra={"description": "201: created; 200: already created with this Idempotency-Key."},
)
def study_create(
    request: HttpRequest,
    body: StudyCreateIn,
    idempotency_key: HeaderEx[
        str | None, P(alias="Idempotency-Key", description=IDEMPOTENCY)
    ] = None,
) -> Status[dict[str, Any]]:
    """Create a study (a draft) as the studies page does, with its form's checks."""
    user = caller(request)
    data = {k: v for k, v in body.model_dump().items() if v is not None}
    form = StudyCreateForm(data={**data, "form_token": _once_token(idempotency_key)})
    if not form.is_valid():
        raise FormInvalid(form)

    def create() -> str:
        study = study_services.study_create_from_form(owner=user, data=form.cleaned_data)
        return reverse("api:study_detail", kwargs={"study_id": study.pk})

    try:
        url, first = study_services.submission_once(
            user=user, token=form.cleaned_data["form_token"], create=create
        )
    except study_services.GenerationSettingsError:
        raise
    except ValueError as exc:  # a refusal of the service, or of the generation settings
        form.add_error(None, str(exc))
        raise FormInvalid(form) from exc
    try:
        study_id = int(resolve(url).kwargs["study_id"])
    except (Resolver404, KeyError, ValueError):
        raise Conflict(
            _("This request was already sent with this Idempotency-Key; nothing was created twice.")
        ) from None
    return Status(201 if first else 200, selectors.study_out(own_study(request, study_id)))


@router.get("/{int:study_id}", response=StudyDetailOut, url_name="study_detail")
def study_detail(request: HttpRequest, study_id: int) -> dict[str, Any]:
    """Status and progress: settings, generation runs, annotators with their progress and
    invite state, pairs by state, answers awaiting review."""
    return selectors.study_detail_out(own_study(request, study_id))


def _study_action(request: HttpRequest, study_id: int, action: str) -> dict[str, Any]:
    study = own_study(request, study_id)
    if action == "start":
        study_services.study_start(study=study)
    elif action == "close" and not study_services.study_close(study=study):
        raise Conflict(_("Only a study open for votes can be closed."))
    elif action == "reopen" and not study_services.study_reopen(study=study):
        raise Conflict(_("Only a closed study can be reopened."))
    study.refresh_from_db()
    return selectors.study_out(study)


@router.post("/{int:study_id}/start", response={200: StudyOut, 400: FieldErrors})
def study_start(request: HttpRequest, study_id: int) -> dict[str, Any]:
    """draft -> generating: both models' answers are generated by the GPU workers; the
    study opens for votes when both are done (poll the study)."""
    return _study_action(request, study_id, "start")


@router.post("/{int:study_id}/close", response={200: StudyOut, 409: Detail})
def study_close(request: HttpRequest, study_id: int) -> dict[str, Any]:
    return _study_action(request, study_id, "close")


@router.post("/{int:study_id}/reopen", response={200: StudyOut, 409: Detail})
def study_reopen(request: HttpRequest, study_id: int) -> dict[str, Any]:
    return _study_action(request, study_id, "reopen")


@router.post("/{int:study_id}/retry", response=RetriedOut)
def study_retry(request: HttpRequest, study_id: int) -> dict[str, Any]:
    """Send the failed generation runs again (their answers are kept)."""
    study = own_study(request, study_id)
    retried = sum(study_services.run_retry(run=run) for run in study.runs.all())
    return {"retried": retried}


# ---------------------------------------------------------------------------- annotators


class _AddAnnotatorsByName(AddAnnotatorsForm):
    """The annotators page's form, existing accounts named by user name (the page's
    checkboxes send ids)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["existing"]
        assert isinstance(field, AnnotatorChoiceField)
        field.to_field_name = "username"


@router.get("/{int:study_id}/annotators", response=list[AnnotatorOut], url_name="annotator_list")
def annotator_list(request: HttpRequest, study_id: int) -> list[dict[str, Any]]:
    study = own_study(request, study_id)
    return [selectors.annotator_out(r) for r in study_selectors.annotator_rows(study)]


@router.post(
    "/{int:study_id}/annotators",
    response={201: AnnotatorsAddedOut, 400: FieldErrors, 409: Detail},
    url_name="annotator_add",
)
def annotator_add(
    request: HttpRequest,
    study_id: int,
    body: AnnotatorsIn,
    idempotency_key: HeaderEx[
        str | None, P(alias="Idempotency-Key", description=IDEMPOTENCY)
    ] = None,
) -> Status[dict[str, Any]]:
    """Add annotators as the annotators page does: existing accounts by user name, and new
    ones by name (an account each, with an invite link returned here once; once the study
    is open their pairs are planned at once)."""
    study = own_study(request, study_id)
    user = caller(request)
    form = _AddAnnotatorsByName(
        data={
            "existing": body.existing,
            "names": "\n".join(body.names),
            "form_token": _once_token(idempotency_key),
        },
        study=study,
    )
    if not form.is_valid():
        raise FormInvalid(form)
    made: dict[str, Any] = {}

    def create() -> str:
        made["added"], made["created"] = api_services.annotators_add(
            study=study,
            existing=list(form.cleaned_data["existing"]),
            names=form.cleaned_data["names"],
            created_by=user,
        )
        return reverse("api:annotator_list", kwargs={"study_id": study.pk})

    _url, first = study_services.submission_once(
        user=user, token=form.cleaned_data["form_token"], create=create
    )
    if not first:
        raise Conflict(
            _("This request was already sent with this Idempotency-Key; nothing was created twice.")
        )
    invites = [_invite_link(request, u, token) for u, token in made["created"]]
    return Status(201, {"added": made["added"], "invites": invites})


def _invite_link(request: HttpRequest, user: User, token: str) -> dict[str, Any]:
    link = request.build_absolute_uri(account_services.invite_path(token))
    return {"id": user.pk, "username": user.username, "link": link}


def _annotator_of(study: Study, user_id: int) -> User:
    user: User = get_object_or_404(study.annotators, pk=user_id)
    return user


@router.post(
    "/{int:study_id}/annotators/{int:user_id}/invite",
    response=InviteLinkOut,
    url_name="annotator_reinvite",
)
def annotator_reinvite(request: HttpRequest, study_id: int, user_id: int) -> dict[str, Any]:
    """A new invite link for an annotator who has not set a password; the old one stops
    working."""
    study = own_study(request, study_id)
    user = _annotator_of(study, user_id)
    token = account_services.invite_reissue(study=study, user=user, requested_by=caller(request))
    return _invite_link(request, user, token)


@router.delete(
    "/{int:study_id}/annotators/{int:user_id}/invite",
    response=RevokedOut,
    url_name="annotator_revoke_invite",
)
def annotator_revoke_invite(request: HttpRequest, study_id: int, user_id: int) -> dict[str, Any]:
    """Withdraw an annotator's unused invite link; ``revoked`` says whether there was one."""
    study = own_study(request, study_id)
    user = _annotator_of(study, user_id)
    revoked = account_services.invite_revoke(study=study, user=user, requested_by=caller(request))
    return {"revoked": revoked}


@router.delete(
    "/{int:study_id}/annotators/{int:user_id}",
    response={204: None, 400: Detail},
    url_name="annotator_remove",
)
def annotator_remove(request: HttpRequest, study_id: int, user_id: int) -> HttpResponse:
    """Take an annotator out of the study (refused once they have voted in it)."""
    study = own_study(request, study_id)
    study_services.study_remove_annotator(study=study, user=_annotator_of(study, user_id))
    return HttpResponse(status=204)
