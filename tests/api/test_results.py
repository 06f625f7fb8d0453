"""Votes, results and exports through the API: the same rows, report and files as the
results page gives its owner."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sbs.analysis import exports, services
from sbs.analysis.models import ReportCache
from sbs.studies.models import Assignment
from sbs.voting.models import Vote
from tests.analysis.test_report_fixtures import make_voted_study
from tests.api.conftest import api_client, token_for
from workers.tasks import compute_report

pytestmark = pytest.mark.django_db

FIXED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def voted():
    return make_voted_study()


@pytest.fixture
def clients(voted):
    page = Client()
    page.force_login(voted.owner)
    return page, api_client(token_for(voted.owner))


def _compute(study) -> None:
    row = services.report_request(study=study)
    assert compute_report.apply(args=[row.pk]).get() == "done"


def _csv_rows(zip_bytes: bytes, study_id: int) -> list[dict[str, str]]:
    archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    raw = archive.read(f"study-{study_id}-votes.csv").decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(raw)))


def test_the_votes_are_the_csv_exports_rows_with_the_models_resolved(voted, clients):
    page, api = clients
    study = voted.study
    votes = api.get(f"/api/studies/{study.pk}/votes").json()
    rows = _csv_rows(page.get(reverse("studies:export", args=[study.pk, "csv"])).content, study.pk)
    assert len(votes) == len(rows) == Vote.objects.filter(assignment__pair__study=study).count()
    for v, r in zip(votes, rows, strict=True):
        assert (v["question"], v["annotator"], v["left_model"], v["right_model"], v["choice"],
                v["winner_model"], v["comment"]) == (
                r["question_id"], r["annotator"], r["left_model"], r["right_model"], r["choice"],
                r["winner_model"], r["comment"])  # fmt: skip
        assert v["repeat"] == (r["repeat"] == "1") and v["seconds"] == float(r["seconds"])
    assert {v["winner_model"] for v in votes} <= {voted.adapted, voted.original, ""}


def test_results_are_202_while_computed_then_exactly_the_json_export(voted, clients, monkeypatch):
    page, api = clients
    study = voted.study
    url = f"/api/studies/{study.pk}/results"
    early = api.get(url)
    assert early.status_code == 202 and early["Retry-After"] == "3"
    body = early.json()
    assert body["state"] == "preliminary" and body["job_status"] == "pending"
    assert body["report"]["counts"]["votes"] == len(voted.planned)
    _compute(study)
    monkeypatch.setattr(timezone, "now", lambda: FIXED)  # the manifest's "created"
    current = api.get(url)
    assert current.status_code == 200
    from_page = page.get(reverse("studies:export", args=[study.pk, "json"]))
    assert json.loads(current.content) == json.loads(from_page.content)
    assert json.loads(current.content)["manifest"]["created"] == FIXED.isoformat()


def test_every_export_of_the_results_page_is_the_same_file(voted, clients, monkeypatch):
    page, api = clients
    study = voted.study
    listed = api.get(f"/api/studies/{study.pk}/exports").json()
    assert [f["key"] for f in listed] == list(exports.FORMATS)
    pending = api.get(f"/api/studies/{study.pk}/exports/html")
    assert pending.status_code == 202 and pending["Retry-After"] == "3"
    assert pending.json()["job_status"] == ReportCache.Status.PENDING
    _compute(study)
    monkeypatch.setattr(timezone, "now", lambda: FIXED)
    for fmt in listed:
        ours = api.get(f"/api/studies/{study.pk}/exports/{fmt['key']}")
        theirs = page.get(reverse("studies:export", args=[study.pk, fmt["key"]]))
        assert ours.status_code == theirs.status_code == 200, fmt
        assert ours["Content-Type"] == theirs["Content-Type"], fmt
        assert ours["Content-Disposition"] == theirs["Content-Disposition"], fmt
        assert fmt["filename"] in ours["Content-Disposition"]
        if ours["Content-Type"] == "application/zip":  # compressed bytes: compare members
            a, b = (zipfile.ZipFile(io.BytesIO(r.content)) for r in (ours, theirs))
            assert {n: a.read(n) for n in a.namelist()} == {n: b.read(n) for n in b.namelist()}
        else:
            assert ours.content == theirs.content, fmt
    assert api.get(f"/api/studies/{study.pk}/exports/pdf").status_code == 404


def test_csv_cells_from_people_are_neutralised_as_on_the_page(voted, clients):
    _page, api = clients
    study = voted.study
    Vote.objects.filter(assignment__in=Assignment.objects.filter(pair__study=study)).update(
        comment='=HYPERLINK("http://x")'
    )
    rows = _csv_rows(api.get(f"/api/studies/{study.pk}/exports/csv").content, study.pk)
    assert {r["comment"] for r in rows} == {'\'=HYPERLINK("http://x")'}
    # JSON is no spreadsheet: the votes list gives the text as written.
    votes = api.get(f"/api/studies/{study.pk}/votes").json()
    assert {v["comment"] for v in votes} == {'=HYPERLINK("http://x")'}
