"""The two registries: report sections (page, JSON, HTML, plots, fingerprint) and export
formats (buttons, view, command, file names)."""

from __future__ import annotations

import base64
import json
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from sbs.analysis import exports, sections, services
from sbs.analysis.models import ReportCache
from sbs.analysis.sections import SECTIONS, Figure, ReportInput, Section
from tests.analysis.test_report_fixtures import fast_users, make_voted_study  # noqa: F401
from workers.tasks import compute_report

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_users")]

PARTIAL = (
    '<section class="card" id="{key}-section"><p id="{key}">{{{{ data.answer }}}} of '
    "{{{{ data.votes }}}} votes{{% if plots.{key}_plot %}} "
    '<img class="plot" alt="" src="data:image/svg+xml;base64,{{{{ plots.{key}_plot }}}}">'
    "{{% endif %}}</p></section>"
)
SVG = base64.b64encode(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>').decode()


@pytest.fixture
def voted():
    return make_voted_study(n=6)


@pytest.fixture
def owner_client(client, voted):
    client.force_login(voted.owner)
    return client


@pytest.fixture
def dummy_sections(monkeypatch, settings, tmp_path):
    """Two sections registered for the test only, each with its partial and its plot: one
    in the preliminary report, one left to the job."""
    for key, preliminary in (("dummy_now", True), ("dummy_later", False)):
        (tmp_path / f"{key}.html").write_text(PARTIAL.format(key=key), encoding="utf-8")

        def compute(r: ReportInput, answer: int = 42 if preliminary else 7) -> dict[str, int]:
            return {"answer": answer, "votes": len(r.frame)}

        monkeypatch.setitem(
            SECTIONS,
            key,
            Section(
                key, compute, preliminary, f"{key}.html",
                Figure(f"{key}_plot", lambda rep, k=key: SVG if rep.get(k) else None),
            ),
        )  # fmt: skip
    engine = settings.TEMPLATES[0]
    settings.TEMPLATES = [{**engine, "DIRS": [*engine["DIRS"], tmp_path]}]


def _text_of(html: str, element_id: str) -> str | None:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</p>', html, re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip() if match else None


def test_a_registered_section_shows_on_the_page_and_in_the_json_and_html_exports(
    owner_client, voted, dummy_sections
):
    n = len(voted.planned)
    page = reverse("studies:results", args=[voted.study.pk])
    early = owner_client.get(page).content.decode()  # before the job: the preliminary report
    assert _text_of(early, "dummy_now") == f"42 of {n} votes"
    assert _text_of(early, "dummy_later") is None and 'id="pending-sections"' in early

    row = ReportCache.objects.get(study=voted.study)
    assert compute_report.apply(args=[row.pk]).get() == "done"
    row.refresh_from_db()
    assert row.report["dummy_later"] == {"answer": 7, "votes": n}
    assert {"dummy_now_plot", "dummy_later_plot"} <= set(row.plots["en"]) <= set(row.plots["ru"])

    html = owner_client.get(page).content.decode()
    assert _text_of(html, "dummy_now") == f"42 of {n} votes"
    assert _text_of(html, "dummy_later") == f"7 of {n} votes"
    assert html.index('id="verdict-section"') < html.index('id="dummy_now"')  # registry order
    assert html.index('id="ranking-section"') < html.index('id="dummy_now"')
    assert html.count("data:image/svg+xml;base64,") == 6  # 4 plots of the report and 2 more

    data = json.loads(owner_client.get(reverse("studies:export", args=[voted.study.pk, "json"])).content)  # fmt: skip
    assert list(data["report"])[-2:] == ["dummy_now", "dummy_later"]
    assert data["report"]["dummy_now"] == {"answer": 42, "votes": n}
    assert data["report"]["dummy_later"] == {"answer": 7, "votes": n}

    export = owner_client.get(reverse("studies:export", args=[voted.study.pk, "html"]))
    offline = export.content.decode()
    assert _text_of(offline, "dummy_now") == f"42 of {n} votes"
    assert _text_of(offline, "dummy_later") == f"7 of {n} votes"


def test_the_json_export_carries_the_registry_sections_not_stray_keys():
    built = {"schema": 2, "counts": {"votes": 0}, "verdict": {"wins": 1}, "stray": 1}
    data = json.loads(exports.report_json(built, {"software": "sbs"}))
    assert list(data["report"]) == ["schema", "counts", *SECTIONS]
    assert data["report"]["verdict"] == {"wins": 1} and data["report"]["ranking"] is None


def test_the_fingerprint_changes_with_the_report_schema(voted, monkeypatch):
    before = services.report_fingerprint(voted.study)
    assert before.endswith(f"/schema-{sections.schema_hash()}")
    monkeypatch.setitem(SECTIONS, "extra", Section("extra", lambda r: None))
    with_extra = services.report_fingerprint(voted.study)
    monkeypatch.undo()
    assert with_extra != before and services.report_fingerprint(voted.study) == before
    monkeypatch.setattr(sections, "SCHEMA_VERSION", sections.SCHEMA_VERSION + 1)
    assert services.report_fingerprint(voted.study) != before
    monkeypatch.undo()
    order = list(SECTIONS.items())
    monkeypatch.setattr(sections, "SECTIONS", dict(reversed(order)))
    assert services.report_fingerprint(voted.study) != before


def test_a_cached_report_of_an_older_schema_is_computed_again(
    owner_client, voted, monkeypatch, django_capture_on_commit_callbacks
):
    page = reverse("studies:results", args=[voted.study.pk])
    owner_client.get(page)
    assert compute_report.apply(args=[ReportCache.objects.get().pk]).get() == "done"
    assert 'id="recomputing"' not in owner_client.get(page).content.decode()
    monkeypatch.setitem(SECTIONS, "extra", Section("extra", lambda r: {"x": 1}))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        html = owner_client.get(page).content.decode()
    assert 'id="recomputing"' in html and len(callbacks) == 1  # a new job for the new schema
    assert ReportCache.objects.filter(study=voted.study).count() == 2


EXPECTED_NAMES = {
    "csv": "study-{pk}-votes.csv.zip",
    "json": "study-{pk}-report.json",
    "html": "study-{pk}-report.html",
    "forgetting": "study-{pk}-forgetting.csv.zip",
    "dpo": "study-{pk}-dpo-votes.jsonl.zip",
    "dpo-majority": "study-{pk}-dpo-majority.jsonl.zip",
}


def test_every_export_format_has_a_button_and_downloads_under_its_own_name(owner_client, voted):
    pk = voted.study.pk
    row = services.report_request(study=voted.study)
    assert compute_report.apply(args=[row.pk]).get() == "done"
    page = owner_client.get(reverse("studies:results", args=[pk])).content.decode()
    buttons = re.search(r'<div class="actions" id="exports">(.*?)</div>', page, re.S)
    assert buttons is not None
    hrefs = re.findall(r'href="([^"]+)"', buttons.group(1))
    assert hrefs == [reverse("studies:export", args=[pk, key]) for key in exports.FORMATS]

    names = {}
    for key in exports.FORMATS:
        response = owner_client.get(reverse("studies:export", args=[pk, key]))
        assert response.status_code == 200, key
        names[key] = re.fullmatch(
            r'attachment; filename="([^"]+)"', response["Content-Disposition"]
        ).group(1)
    expected = {key: name.format(pk=pk) for key, name in EXPECTED_NAMES.items()}
    assert expected.items() <= names.items()
    assert len(set(names.values())) == len(exports.FORMATS)
    assert names == {k: f.download_name(pk) for k, f in exports.FORMATS.items()}
    # The older spelling of the majority file downloads the same file, under the same name.
    older = owner_client.get(reverse("studies:export", args=[pk, "dpo"]), {"aggregate": "majority"})
    assert names["dpo-majority"] in older["Content-Disposition"]
    assert owner_client.get(reverse("studies:export", args=[pk, "no-such"])).status_code == 404


def test_the_export_command_offers_every_format(tmp_path, voted, capsys):
    pk = voted.study.pk
    for key, spec in exports.FORMATS.items():
        out = tmp_path / spec.data_name(pk)
        call_command("export_report", str(pk), "--format", key, "--out", str(out))
        assert out.stat().st_size > 0, key
        sidecar = out.with_name(out.name + ".manifest.json")
        assert sidecar.exists() == (spec.manifest is exports.ManifestPolicy.BESIDE), key
    majority = tmp_path / "older.jsonl"
    call_command("export_report", str(pk), "--format", "dpo", "--aggregate", "majority",
                 "--out", str(majority))  # fmt: skip
    assert majority.read_bytes() == (tmp_path / f"study-{pk}-dpo-majority.jsonl").read_bytes()
    with pytest.raises(Exception, match="invalid choice"):
        call_command("export_report", str(pk), "--format", "no-such", "--out", str(tmp_path / "x"))
