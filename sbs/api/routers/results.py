"""A study's votes, results and exports, for its owner: the votes with the models resolved
(as the CSV export has them), the report's JSON, and every export of the results page
(the same renderers, manifests and CSV neutralisation: :mod:`sbs.analysis.exports`)."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from ninja import Router, Status

from sbs.analysis import exports
from sbs.analysis import services as analysis_services
from sbs.api import selectors
from sbs.api import services as api_services
from sbs.api.routers.studies import own_study
from sbs.api.schemas import (
    ExportFormatOut,
    ExportPendingOut,
    ResultsOut,
    ResultsPendingOut,
    VoteRowOut,
)

router = Router(tags=["results"])

RETRY_AFTER_SECONDS = 3  # the results page refreshes itself this often too


def _recomputing() -> str:
    return _("The report is being recomputed; ask again in a few seconds.")


def _language() -> str:
    return get_language() or "en"


@router.get("/{int:study_id}/votes", response=list[VoteRowOut], url_name="vote_list")
def vote_list(request: HttpRequest, study_id: int) -> list[dict[str, Any]]:
    """Every vote of the study in the order cast, with the models on each side and the
    model preferred (the CSV export's rows)."""
    return selectors.vote_rows(own_study(request, study_id))


@router.get(
    "/{int:study_id}/results",
    response={200: ResultsOut, 202: ResultsPendingOut},
    url_name="results",
    openapi_extra={
        "description": "200: the report of the current votes, exactly as the JSON export "
        "(`manifest` and `report`). 202 (with Retry-After) while it is computed: the older "
        "full report or the preliminary one, as the results page shows meanwhile."
    },
)
def results(
    request: HttpRequest, study_id: int, response: HttpResponse
) -> HttpResponse | Status[dict[str, Any]]:
    """The study's report, as the results page gets it."""
    study = own_study(request, study_id)
    page = analysis_services.report_for_page(study=study, language=_language())
    if page.state == "current":
        out = exports.export_file(
            study, "json", report=page.report, fingerprint=page.row.fingerprint
        )
        return HttpResponse(out.data, content_type="application/json; charset=utf-8")
    body = {
        "state": page.state,
        "job_status": page.row.status,
        "detail": _recomputing(),
        "report": selectors.report_body(page.report),
        "fresh": selectors.report_body(page.fresh) if page.fresh is not None else None,
    }
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return Status(202, body)


@router.get("/{int:study_id}/exports", response=list[ExportFormatOut], url_name="export_list")
def export_list(request: HttpRequest, study_id: int) -> list[dict[str, Any]]:
    """The exports of the results page, in the order of its download buttons."""
    study = own_study(request, study_id)
    return [selectors.export_format_out(f, study.pk) for f in exports.FORMATS.values()]


@router.get(
    "/{int:study_id}/exports/{fmt}",
    response={202: ExportPendingOut},
    url_name="export_download",
    openapi_extra={
        "description": "The file the results page downloads: `fmt` is a key of "
        "/studies/{study_id}/exports. JSON and HTML carry their manifest; CSV and the DPO "
        "files come as a .zip with manifest.json. 202 (with Retry-After) while the report "
        "of a report format is computed.",
        "responses": {"200": {"description": "the file (Content-Disposition: attachment)"}},
    },
)
def export_download(
    request: HttpRequest, study_id: int, fmt: str, response: HttpResponse
) -> HttpResponse | Status[dict[str, Any]]:
    study = own_study(request, study_id)
    if fmt not in exports.FORMATS:
        raise Http404
    out = api_services.export_for_download(study=study, key=fmt, language=_language())
    if isinstance(out, api_services.ExportPending):
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return Status(202, {"job_status": out.row.status, "detail": _recomputing()})
    data, filename, content_type = out.download()
    download = HttpResponse(data, content_type=content_type)
    download["Content-Disposition"] = f'attachment; filename="{filename}"'
    return download
