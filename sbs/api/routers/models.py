"""Models: list, one model with its recipe, register (upload or a path on the server, the
page's form and checks), imports from the server, adaptation jobs."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from ninja import File, Form, Router, Status, UploadedFile

from sbs.api import selectors
from sbs.api import services as api_services
from sbs.api.auth import caller
from sbs.api.errors import FormInvalid
from sbs.api.schemas import (
    AdaptationOut,
    AdaptIn,
    FieldErrors,
    ModelDetailOut,
    ModelImportOut,
    ModelOut,
)
from sbs.catalog import selectors as catalog_selectors
from sbs.catalog import services as catalog_services
from sbs.catalog.forms import AdaptForm, ModelRegisterForm
from sbs.catalog.models import ModelEntry

router = Router(tags=["models"])


@router.get("", response=list[ModelOut], url_name="model_list")
def model_list(request: HttpRequest) -> list[dict[str, Any]]:
    """Every installed model (a library shared by the researchers)."""
    return [selectors.model_out(m) for m in catalog_selectors.models_ready()]


@router.post(
    "",
    response={201: ModelOut, 202: ModelImportOut, 400: FieldErrors},
    url_name="model_register",
    openapi_extra={
        "description": "Either `archive` (a .zip, .tar.gz or .gguf upload: checked and "
        "installed now, 201) or `path` (a folder or .gguf file under MODEL_IMPORT_ROOTS: a "
        "worker checks and copies it, 202 with the import job; poll /models/imports)."
    },
)
def model_register(
    request: HttpRequest,
    name: Form[str],
    path: Form[str] = "",
    parent: Form[int | None] = None,
    archive: File[UploadedFile | None] = None,
) -> Status[dict[str, Any]]:
    """Register a model as the models page does."""
    form = ModelRegisterForm(
        data={"name": name, "path": path, "parent": parent or ""},
        files=MultiValueDict({"archive": [archive]} if archive is not None else {}),
    )
    if not form.is_valid():
        raise FormInvalid(form)
    data = form.cleaned_data
    user = caller(request)
    if data["archive"]:
        entry = api_services.model_register_upload(
            name=data["name"], upload=data["archive"], user=user, parent=data["parent"]
        )
        return Status(201, selectors.model_out(entry))
    job = catalog_services.model_import_start(
        name=data["name"], server_path=data["path"].strip(), user=user, parent=data["parent"]
    )
    return Status(202, selectors.model_import_out(job))


@router.get("/imports", response=list[ModelImportOut], url_name="model_import_list")
def model_import_list(request: HttpRequest) -> list[dict[str, Any]]:
    """The latest imports from the server, newest first."""
    return [selectors.model_import_out(j) for j in catalog_selectors.recent_imports()]


@router.get("/adaptations", response=list[AdaptationOut], url_name="adaptation_list")
def adaptation_list(request: HttpRequest) -> list[dict[str, Any]]:
    """The latest adaptation jobs, newest first."""
    return [selectors.adaptation_out(j) for j in catalog_selectors.recent_adaptations()]


@router.get("/{int:model_id}", response=ModelDetailOut, url_name="model_detail")
def model_detail(request: HttpRequest, model_id: int) -> dict[str, Any]:
    """One model: its parent, children and recipe, with the recipe's facts as the model
    page lists them."""
    entry = get_object_or_404(ModelEntry.objects.ready().select_related("parent"), pk=model_id)
    children = ModelEntry.objects.ready().filter(parent=entry).order_by("name")
    facts = catalog_selectors.recipe_facts(entry.recipe or {})
    return {
        **selectors.model_out(entry),
        "recipe": entry.recipe or {},
        "facts": [{"step": s, "label": str(label), "value": v} for s, label, v in facts],
        "children": [selectors.ref(c) for c in children],
    }


@router.post(
    "/{int:model_id}/adapt",
    response={202: AdaptationOut, 400: FieldErrors},
    url_name="model_adapt",
)
def model_adapt(request: HttpRequest, model_id: int, body: AdaptIn) -> Status[dict[str, Any]]:
    """Adapt a model to Russian as the model's adapt page does: the settings are the page's
    form's (its defaults for those left out); the job runs on a GPU worker."""
    parent = get_object_or_404(ModelEntry.objects.ready(), pk=model_id)
    form = AdaptForm()
    defaults = {k: f.initial for k, f in form.fields.items() if f.initial is not None}
    form = AdaptForm(data={**defaults, **body.config, "name": body.name})
    unknown = sorted(set(body.config) - (set(form.fields) - {"name"}))
    valid = form.is_valid()
    if not valid or unknown:
        for key in unknown:
            form.add_error(None, _("Unknown setting “%(name)s”.") % {"name": key})
        raise FormInvalid(form)
    config = {k: v for k, v in form.cleaned_data.items() if k != "name" and v is not None}
    try:
        job = catalog_services.adaptation_start(
            parent=parent, name=form.cleaned_data["name"], config=config, user=caller(request)
        )
    except ValueError as exc:  # the recipe's own checks (ServiceError is one too)
        form.add_error(None, str(exc))
        raise FormInvalid(form) from exc
    return Status(202, selectors.adaptation_out(job))
