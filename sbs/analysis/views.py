"""The result page of a study and its exports. Owners only; everyone else gets a 404."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from sbs.accounts.roles import researcher_required
from sbs.analysis import exports, services
from sbs.analysis.forms import ExportForm
from sbs.analysis.models import ReportCache
from sbs.studies.models import Study


def _own_study(request: HttpRequest, pk: int) -> Study:
    return get_object_or_404(
        Study.objects.select_related("model_a", "model_b", "question_set"),
        pk=pk,
        owner=request.user,
    )


@researcher_required
def results(request: HttpRequest, pk: int) -> HttpResponse:
    study = _own_study(request, pk)
    page = services.report_for_page(study=study, language=get_language() or "en")
    return render(
        request,
        "analysis/results.html",
        {
            "study": study,
            "report": page.report,
            "plots": page.plots,
            "state": page.state,
            "fresh": page.fresh,
            "row": page.row,
            "job_failed": page.row.status == ReportCache.Status.FAILED,
            "refresh": page.state != "current",
            "export_formats": exports.FORMATS.values(),
        },
    )


@researcher_required
def export(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    study = _own_study(request, pk)
    form = ExportForm(request.GET)
    if not form.is_valid():
        raise Http404
    spec = exports.FORMATS.get(exports.format_key(fmt, form.cleaned_data["aggregate"]))
    if spec is None:
        raise Http404
    if spec.source is exports.Source.VOTES:
        out = exports.export_file(study, spec.key, settings=services.report_settings(study))
    else:
        row = services.report_request(study=study)
        if row.status != ReportCache.Status.DONE or row.report is None:
            messages.info(
                request, _("The report is being recomputed; download it again in a few seconds.")
            )
            return redirect("studies:results", pk=study.pk)
        out = exports.export_file(
            study,
            spec.key,
            report=row.report,
            plots=row.plots.get(get_language() or "en"),
            fingerprint=row.fingerprint,
        )
    return _download(*out.download())


def _download(data: bytes, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
