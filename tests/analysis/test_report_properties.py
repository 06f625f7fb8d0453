"""The whole report never raises, whatever votes come in (property-based, no database).

Hypothesis draws vote frames — one vote, all left, a single annotator, both model orders,
NaN seconds, empty and hostile category names, repeats — and speed rows with NaN, zero
and infinite medians, and feeds each to the whole report path that needs no database:
:func:`build_report`, every plot (:func:`report_figures`), and every export renderer
(JSON, HTML, votes CSV, DPO JSONL). Each must finish, and every number it emits must be
finite or None.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sbs.analysis import exports
from sbs.analysis.figures import report_figures
from sbs.analysis.report import build_report
from sbs.analysis.sections import SECTIONS
from sbs.analysis.stats.frame import vote_frame
from sbs.studies.models import Study

ORIGINAL, ADAPTED = "orig", "=adapted"  # a model name a spreadsheet would evaluate
NAMES = ["anna", "=1+1", "-boris", "@vera", "\tgleb", "дима", "+7", "$x^$", "\x01ctl"]
CATEGORIES = ["", "math", "-", "=SUM(A1)", "код", "5$ and $x^"]
CHOICES = ["left", "right", "tie", "both_bad"]
# Both storage orders of the study's pair, and now and then a model outside the study.
PAIRS = [(ORIGINAL, ADAPTED), (ADAPTED, ORIGINAL)] * 4 + [(ORIGINAL, "third")]
SECONDS = st.one_of(
    st.just(math.nan),
    st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False),
)


@st.composite
def votes(draw: st.DrawFn) -> list[dict[str, Any]]:
    n_questions = draw(st.integers(1, 6))
    n_annotators = draw(st.integers(1, len(NAMES)))
    n = draw(st.integers(0, 40))
    all_left = draw(st.booleans())
    rows = []
    for _ in range(n):
        q = draw(st.integers(0, n_questions - 1))
        model_a, model_b = draw(st.sampled_from(PAIRS))
        rows.append(
            {
                "question": f"q{q}" if q else "-0",
                "category": CATEGORIES[q % len(CATEGORIES)],
                "annotator": NAMES[draw(st.integers(0, n_annotators - 1))],
                "model_a": model_a,
                "model_b": model_b,
                "left": draw(st.sampled_from([model_a, model_b])),
                "choice": "left" if all_left else draw(st.sampled_from(CHOICES)),
                "seconds": draw(SECONDS),
                "repeat": draw(st.booleans()) if draw(st.booleans()) else False,
            }
        )
    return rows


SPEED_VALUE = st.sampled_from([0.0, 1.5, 40.0, math.nan, math.inf])


@st.composite
def speed_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = []
    for model in draw(st.sampled_from([[], [ORIGINAL], [ORIGINAL, ADAPTED]])):
        rows.append(
            {
                "model": model,
                "answers": draw(st.integers(0, 78)),
                "median_new_tokens": draw(SPEED_VALUE),
                "median_tokens_per_second": draw(SPEED_VALUE),
                "median_chars_per_second": draw(SPEED_VALUE),
                "median_chars": draw(SPEED_VALUE),
                "eos_share": draw(SPEED_VALUE),
            }
        )
    return rows


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    if isinstance(value, float):
        return [value]
    return []


def _strict(text: str) -> Any:
    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in JSON")

    return json.loads(text, parse_constant=refuse)


def _export_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows the votes CSV and the DPO file are written from, as the selector builds them."""
    out = []
    for k, r in enumerate(frame.to_dict("records")):
        other = r["model_b"] if r["left"] == r["model_a"] else r["model_a"]
        out.append(
            {
                "vote_id": k,
                "question_pk": int(str(r["question"]).lstrip("q-")),
                "question": r["question"],
                "category": r["category"],
                "prompt": f"prompt {r['question']}",
                "annotator": r["annotator"],
                "left": r["left"],
                "right": other,
                "choice": r["choice"],
                "seconds": r["seconds"],
                "comment": '=HYPERLINK("http://x")' if k % 2 else "",
                "created_at": datetime(2026, 1, 1, tzinfo=UTC),
                "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
                "repeat": r["repeat"],
                "excluded": False,
            }
        )
    return out


# One vote, left answer preferred, time unknown, empty category (the edge cases of issue 8).
ONE = {"question": "q1", "category": "", "annotator": "anna", "model_a": ORIGINAL,
       "model_b": ADAPTED, "left": ADAPTED, "choice": "left", "seconds": math.nan,
       "repeat": False}  # fmt: skip
MANIFEST = {"software": "sbs", "version": "test", "created": "2026-01-01T00:00:00+00:00"}


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(rows=votes(), speed=speed_rows())
@example(rows=[], speed=[])
@example(rows=[ONE], speed=[])
@example(rows=[{**ONE, "repeat": True}], speed=[])
@example(
    rows=[{**ONE, "question": f"q{k}", "annotator": NAMES[k % 2]} for k in range(13)], speed=[]
)
@example(rows=[{**ONE, "choice": "both_bad", "annotator": n} for n in NAMES], speed=[])
@example(rows=[{**ONE, "model_b": "third", "left": "third"}], speed=[])
def test_the_whole_report_never_raises_and_emits_only_finite_numbers(
    rows: list[dict[str, Any]], speed: list[dict[str, Any]]
) -> None:
    frame = vote_frame(pd.DataFrame(rows, columns=list(votes_columns())))
    report = build_report(frame, original=ORIGINAL, adapted=ADAPTED, speed=speed, rounds=25)
    assert set(SECTIONS) <= set(report)
    assert all(math.isfinite(x) for x in _numbers(report))
    assert report["counts"]["votes"] == len(rows)

    plots = report_figures(report)
    for svg in plots.values():
        assert ET.fromstring(base64.b64decode(svg)).tag.endswith("svg")  # well-formed SVG

    data = _strict(exports.report_json(report, MANIFEST).decode("utf-8"))
    assert data["report"]["counts"] == report["counts"]
    html = exports.report_html(Study(name="=study"), report, plots, MANIFEST)
    assert html.count("data:image/svg+xml;base64,") == len(plots)

    export_rows = _export_rows(frame)
    table = list(csv.reader(io.StringIO(exports.votes_csv(export_rows).decode("utf-8-sig"))))
    assert len(table) == len(rows) + 1
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in table for cell in r)
    answers = {
        (r["question_pk"], m): f"answer {m}" for r in export_rows for m in (r["left"], r["right"])
    }
    for aggregate in ("none", "majority"):
        for line in exports.jsonl(exports.dpo_records(export_rows, answers, aggregate=aggregate)).splitlines():  # fmt: skip
            _strict(line.decode("utf-8"))


def votes_columns() -> tuple[str, ...]:
    return ("question", "category", "annotator", "model_a", "model_b", "left", "choice", "seconds", "repeat")  # fmt: skip
