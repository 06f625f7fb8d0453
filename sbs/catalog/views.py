"""The researcher's model pages: register, import, adapt."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from adaptation.export import zip_stream
from adaptation.modelfiles import ModelFileError
from sbs.accounts.roles import AuthedRequest, researcher_required
from sbs.analysis.figures import section_figure
from sbs.analysis.sections import phi_curve
from sbs.catalog import ensembles, selectors, services
from sbs.catalog.forms import AdaptForm, EnsembleForm, ModelRegisterForm
from sbs.catalog.messages import message_text
from sbs.catalog.models import WEIGHT_KINDS, ModelEntry


@researcher_required
def models_list(request: AuthedRequest) -> HttpResponse:
    form = ModelRegisterForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data["archive"]:
                upload = data["archive"]
                suffix = "".join(Path(upload.name).suffixes[-2:]) or ".bin"
                with tempfile.TemporaryDirectory() as tmp:
                    staged = Path(tmp) / f"upload{suffix}"
                    with staged.open("wb") as handle:
                        for chunk in upload.chunks():
                            handle.write(chunk)
                    entry = services.model_register(
                        name=data["name"], source=staged, user=request.user, parent=data["parent"]
                    )
            else:
                services.model_import_start(
                    name=data["name"],
                    server_path=data["path"].strip(),
                    user=request.user,
                    parent=data["parent"],
                )
                messages.success(
                    request,
                    _(
                        "Import started: a worker checks and copies the files; the model appears here when it is done."
                    ),
                )
                return redirect("catalog:models")
        except ModelFileError as exc:
            form.add_error(None, message_text(exc.message))
        except services.ServiceError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Model %(name)s registered.") % {"name": entry.name})
            return redirect("catalog:models")
    jobs = selectors.recent_adaptations()
    imports = selectors.recent_imports()
    running = any(j.active for j in jobs) or any(j.active for j in imports)
    return render(
        request,
        "catalog/models.html",
        {
            "form": form,
            "models": selectors.models_ready(),
            "jobs": jobs,
            "imports": imports,
            "refresh": running,
        },  # fmt: skip
    )


@researcher_required
@require_GET
def model_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    """One model: its files, its parent and children, and for an adapted model the recipe
    (what each step recorded) and the φ curve of its merge."""
    entry = get_object_or_404(ModelEntry.objects.ready().select_related("parent"), pk=pk)
    curve = phi_curve(((entry.recipe or {}).get("steps") or {}).get("merge"))
    return render(
        request,
        "catalog/model_detail.html",
        {
            "model": entry,
            "children": ModelEntry.objects.ready().filter(parent=entry).order_by("name"),
            "facts": selectors.recipe_facts(entry.recipe or {}),
            "curve": curve,
            "phi_plots": section_figure("merge", curve),
            "downloadable": selectors.made_by_the_tool(entry),
            "has_adapter": selectors.download_files(entry, adapter=True) is not None,
            "answer_sets": selectors.imported_answer_sets(entry) if entry.is_imported else [],
            "ensemble": selectors.ensemble_facts(entry),
        },
    )


@researcher_required  # type: ignore[arg-type]  # (typed for HttpResponse, not streaming)
@require_GET
def model_download(request: AuthedRequest, pk: int) -> StreamingHttpResponse:
    """The model's files as a zip, streamed as it is written (models are gigabytes);
    ``?part=adapter``: its LoRA adapter alone. Same access as the model's page."""
    entry = get_object_or_404(ModelEntry.objects.ready(), pk=pk)
    adapter = request.GET.get("part") == "adapter"
    files = selectors.download_files(entry, adapter=adapter)
    if files is None:
        raise Http404
    name = slugify(entry.name)[:100].strip("-_.") or f"model-{entry.pk}"
    if adapter:
        name += "-adapter"
    response = StreamingHttpResponse(
        zip_stream([(f"{name}/{arcname}", path) for arcname, path in files]),
        content_type="application/zip",
    )
    response["Content-Disposition"] = content_disposition_header(True, f"{name}.zip")
    return response


@researcher_required
def model_adapt(request: AuthedRequest, pk: int) -> HttpResponse:
    """Adapt a model to Russian: the job runs on a GPU-queue worker and registers the result."""
    parent = get_object_or_404(ModelEntry.objects.ready().filter(kind__in=WEIGHT_KINDS), pk=pk)
    form = AdaptForm(request.POST or None, initial={"name": f"{parent.name}-ru"})
    if request.method == "POST" and form.is_valid():
        config = {k: v for k, v in form.cleaned_data.items() if k != "name" and v is not None}
        try:
            services.adaptation_start(
                parent=parent, name=form.cleaned_data["name"], config=config, user=request.user
            )
        except (services.ServiceError, ValueError) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, _("Adaptation started; the new model appears here when it is done.")
            )
            return redirect("catalog:models")
    return render(request, "catalog/adapt.html", {"form": form, "parent": parent})


@researcher_required
def model_ensemble(request: AuthedRequest, pk: int) -> HttpResponse:
    """Build an ensemble of task adapters on a model: a GPU-queue job registers it as a child."""
    parent = get_object_or_404(ModelEntry.objects.ready().filter(kind__in=WEIGHT_KINDS), pk=pk)
    form = EnsembleForm(request.POST or None, initial={"name": f"{parent.name}-ensemble"})
    if request.method == "POST" and form.is_valid():
        try:
            ensembles.ensemble_start(
                parent=parent, name=form.cleaned_data["name"], config=form.settings(),
                user=request.user,
            )  # fmt: skip
        except services.ServiceError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, _("Ensemble started; it appears among the models when it is done.")
            )
            return redirect("catalog:models")
    return render(request, "catalog/ensemble.html", {"form": form, "parent": parent})
