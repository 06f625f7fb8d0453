"""Studies of N systems: the pairwise matrix and verdicts (cross-checked by hand and by an
independent count), Holm across the pairs, and whole multi-system reports that never raise."""

from __future__ import annotations

import base64
import json
import math
import random
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

import pandas as pd
import pytest
from django.template.loader import render_to_string
from django.utils import translation
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sbs.analysis import exports
from sbs.analysis.figures import report_figures
from sbs.analysis.report import build_preliminary, build_report
from sbs.analysis.sections import SECTIONS, page_sections
from sbs.analysis.stats.frame import vote_frame
from sbs.analysis.stats.pairwise import _pair_seed, pairwise
from sbs.studies.models import Study
from tests.analysis.test_report_properties import MANIFEST, _numbers, _strict

COLUMNS = ["question", "category", "annotator", "model_a", "model_b", "left", "choice",
           "seconds", "repeat"]  # fmt: skip


def vote(q: str, ann: str, x: str, y: str, winner: str | None, *, left: str | None = None,
         stored: tuple[str, str] | None = None, repeat: bool = False) -> dict[str, Any]:  # fmt: skip
    """A vote between systems x and y: ``winner`` one of them, "tie" or None (both bad)."""
    a, b = stored or (x, y)
    left = left or a
    right = b if left == a else a
    choice = ("tie" if winner == "tie" else "both_bad" if winner is None
              else "left" if winner == left else "right")  # fmt: skip
    assert winner in (None, "tie", left, right)
    return {"question": q, "category": "c", "annotator": ann, "model_a": a, "model_b": b,
            "left": left, "choice": choice, "seconds": 3.0, "repeat": repeat}  # fmt: skip


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return vote_frame(pd.DataFrame(rows, columns=COLUMNS))


def plain_count(
    rows: list[dict[str, Any]], systems: list[str]
) -> dict[tuple[str, str], list[float]]:
    """An independent count: per ordered pair (x, y), [points of x, votes of the pair]."""
    out: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in rows:
        if r["repeat"] or r["choice"] == "both_bad":
            continue
        x, y = r["model_a"], r["model_b"]
        right = y if r["left"] == x else x
        winner = {"left": r["left"], "right": right, "tie": None}[r["choice"]]
        for me, other in ((x, y), (y, x)):
            out[(me, other)][1] += 1
            out[(me, other)][0] += 0.5 if winner is None else float(winner == me)
    return out


def test_the_matrix_matches_an_independent_count_whatever_the_order_and_side():
    rows = [
        vote("q1", "ann", "A", "B", "A"),
        vote("q1", "bob", "A", "B", "A", left="B"),
        vote("q2", "ann", "A", "B", "B", stored=("B", "A")),  # the other storage order
        vote("q2", "bob", "A", "B", "tie", stored=("B", "A"), left="A"),
        vote("q3", "ann", "A", "C", None),  # both bad: out of every denominator
        vote("q3", "bob", "A", "C", "C", left="C"),
        vote("q4", "ann", "B", "C", "B"),
        vote("q4", "ann", "B", "C", "C", repeat=True),  # a repeat: out
    ]
    systems = ["A", "B", "C"]
    result = pairwise(frame(rows), systems, rounds=0, seed=1)
    expected = plain_count(rows, systems)
    for i, x in enumerate(systems):
        for j, y in enumerate(systems):
            if i == j:
                assert result.matrix[i][j] is None
                continue
            points, n = expected.get((x, y), [0.0, 0.0])
            assert result.counts[i][j] == n
            assert result.matrix[i][j] == (points / n if n else None)
            if n:
                assert result.matrix[i][j] + result.matrix[j][i] == pytest.approx(1.0)
    assert result.matrix[0][1] == pytest.approx(2.5 / 4)  # A over B: 2 wins, 1 loss, 1 tie
    assert result.overall == pytest.approx((2.5 / 5, (1.5 + 1) / 5, 1.0 / 2))
    ac = next(p for p in result.pairs if {p.model, p.opponent} == {"A", "C"})
    assert (ac.model, ac.wins, ac.losses, ac.both_bad) == ("C", 1, 0, 1)  # the winner leads


def test_holm_across_pairs_matches_the_textbook_computation():
    rows = []
    for k, (x, y, wins, losses) in enumerate(
        [("A", "B", 10, 0), ("A", "C", 8, 2), ("B", "C", 5, 5)]
    ):
        rows += [vote(f"q{k}{n}", f"a{n}", x, y, x) for n in range(wins)]
        rows += [vote(f"q{k}{n}", f"b{n}", x, y, y) for n in range(losses)]
    result = pairwise(frame(rows), ["A", "B", "C"], rounds=0, seed=0)
    by_pair = {(p.model, p.opponent): p for p in result.pairs}
    # exact two-sided sign tests: 2 * P(X <= k), X ~ Bin(10, 1/2)
    p_ab, p_ac, p_bc = 2 / 1024, 2 * (1 + 10 + 45) / 1024, 1.0
    assert by_pair[("A", "B")].p == pytest.approx(p_ab)
    assert by_pair[("A", "C")].p == pytest.approx(p_ac)
    assert by_pair[("B", "C")].p == pytest.approx(p_bc)
    # Holm: the smallest times 3, the next times 2 (kept monotone), the largest times 1
    assert by_pair[("A", "B")].p_holm == pytest.approx(3 * p_ab)
    assert by_pair[("A", "C")].p_holm == pytest.approx(2 * p_ac)
    assert by_pair[("B", "C")].p_holm == pytest.approx(1.0)
    assert [p.significant for p in result.pairs] == [True, False, False]  # sorted by Holm p
    assert result.n_tests == 3


def test_a_pair_without_decisive_votes_has_no_test_and_leaves_the_family():
    rows = [vote("q1", "a", "A", "B", "A"), vote("q2", "a", "A", "C", None),
            vote("q3", "a", "B", "C", "tie")]  # fmt: skip
    result = pairwise(frame(rows), ["A", "B", "C", "D"], rounds=0, seed=0)
    assert result.n_tests == 1  # only A-B has a win or a loss
    assert {(p.model, p.opponent) for p in result.pairs} == {("A", "B"), ("A", "C"), ("B", "C")}
    assert result.counts[3] == (0, 0, 0, 0) and result.overall[3] is None  # D never voted on


def test_two_systems_keep_their_report_and_have_no_pairwise_section():
    rows = [vote(f"q{k}", "ann", "orig", "adapted", "adapted") for k in range(5)]
    report = build_report(frame(rows), original="orig", adapted="adapted", rounds=20)
    assert report["models"]["systems"] == ["orig", "adapted"]
    assert report["pairwise"] is None and report["verdict"]["wins"] == 5
    assert report["categories"]["categories"] and report["power"] is not None
    assert [r["model"] for r in report["ranking"]["ratings"]] == ["adapted", "orig"]
    assert [s.key for s in page_sections(report)][:2] == ["verdict", "speed"]
    named = build_report(frame(rows), original="orig", adapted="adapted", rounds=20,
                         systems=["orig", "adapted"])  # fmt: skip
    assert {**named, "compute_seconds": 0} == {**report, "compute_seconds": 0}
    html = _body(report)
    assert 'id="verdict-section"' in html and 'id="win-fraction"' in html
    assert html.index('id="verdict-section"') < html.index('id="ranking-section"')
    assert 'id="pairwise-section"' not in html


SYSTEMS = ["alpha", "<script>alert(1)</script>", "=cmd", "дельта", "eps", "zeta"]
SCRIPT = SYSTEMS[1]
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@st.composite
def many_votes(draw: st.DrawFn) -> tuple[list[str], list[dict[str, Any]]]:
    systems = SYSTEMS[: draw(st.integers(3, 6))]
    pairs = [(x, y) for i, x in enumerate(systems) for y in systems[i + 1 :]]
    pairs = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=len(pairs), unique=True))
    all_left = draw(st.booleans())
    rows = []
    for _ in range(draw(st.integers(0, 40))):
        x, y = draw(st.sampled_from(pairs))
        stored = (x, y) if draw(st.booleans()) else (y, x)
        rows.append({
            "question": f"q{draw(st.integers(0, 5))}", "category": "c",
            "annotator": f"a{draw(st.integers(0, 4))}", "model_a": stored[0],
            "model_b": stored[1], "left": draw(st.sampled_from(stored)),
            "choice": "left" if all_left else draw(st.sampled_from(["left", "right", "tie", "both_bad"])),
            "seconds": 2.0, "repeat": draw(st.booleans()) and draw(st.booleans()),
        })  # fmt: skip
    return systems, rows


ONE = [{"question": "q", "category": "c", "annotator": "a", "model_a": "alpha", "model_b": "eps",
        "left": "eps", "choice": "left", "seconds": 1.0, "repeat": False}]  # fmt: skip
# Degenerate studies: no vote; one vote (and systems never voted on); all ties; all both
# bad; every vote for the left answer; one pair of three voted on, the name to escape in it.
DEGENERATE = {
    "no votes": (SYSTEMS[:3], []),
    "one vote": (SYSTEMS[:5], ONE),
    "all ties": (SYSTEMS[:5], [{**ONE[0], "question": f"q{k}", "choice": "tie"} for k in range(3)]),
    "all both bad": (SYSTEMS[:5], [{**ONE[0], "annotator": f"a{k}", "choice": "both_bad"}
                                   for k in range(3)]),
    "all left": (SYSTEMS[:6], [{**ONE[0], "model_a": x, "model_b": y, "left": y, "question": f"q{k}"}
                               for k, (x, y) in enumerate(zip(SYSTEMS[:-1], SYSTEMS[1:], strict=True))]),
    "one pair": (SYSTEMS[:3], [{**ONE[0], "model_b": SCRIPT, "left": SCRIPT, "annotator": f"a{k}"}
                               for k in range(2)]),
}  # fmt: skip


def _report(systems: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    return build_report(frame(rows), original=systems[0], adapted=systems[1], systems=systems,
                        rounds=20, seed=3)  # fmt: skip


@settings(max_examples=10, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(case=many_votes())
@example(case=DEGENERATE["no votes"])
@example(case=DEGENERATE["one vote"])
@example(case=DEGENERATE["all ties"])
@example(case=DEGENERATE["all both bad"])
def test_a_whole_report_of_many_systems_never_raises(case: tuple[list[str], list[dict[str, Any]]]):
    systems, rows = case
    report = _report(systems, rows)
    assert set(SECTIONS) <= set(report)
    assert report["models"]["systems"] == systems
    for key in ("verdict", "categories", "power", "forgetting", "texts", "merge"):
        assert report[key] is None  # no single orientation among many systems
    assert all(math.isfinite(x) for x in _numbers(report))
    _strict(json.dumps(report, allow_nan=False))
    _strict(exports.report_json(report, MANIFEST).decode("utf-8"))

    data = report["pairwise"]
    assert data["systems"] == systems
    expected = plain_count(rows, systems)
    for i, x in enumerate(systems):
        for j, y in enumerate(systems):
            points, n = expected.get((x, y), [0.0, 0.0])
            assert data["counts"][i][j] == (0 if i == j else n)
            if i != j and n:
                assert data["matrix"][i][j] == pytest.approx(points / n)
                assert data["matrix"][i][j] + data["matrix"][j][i] == pytest.approx(1.0)
            else:
                assert data["matrix"][i][j] is None
    firsts = [r for r in rows if not r["repeat"]]
    voted = {m for r in firsts for m in (r["model_a"], r["model_b"])}
    assert {m for p in data["pairs"] for m in (p["model"], p["opponent"])} == voted
    # The ranking rates every system with a vote that says something (a tie counts).
    rated = {m for r in firsts if r["choice"] != "both_bad" for m in (r["model_a"], r["model_b"])}
    if rated:
        assert {r["model"] for r in report["ranking"]["ratings"]} == rated
    else:
        assert report["ranking"] is None
    assert [s.key for s in page_sections(report)][:2] == ["ranking", "pairwise"]

    preliminary = build_preliminary(frame(rows), original=systems[0], adapted=systems[1],
                                    systems=systems)  # fmt: skip
    assert preliminary["pairwise"]["matrix"] == data["matrix"]
    assert preliminary["ranking"] is None and preliminary["verdict"] is None
    json.dumps(preliminary, allow_nan=False)


@pytest.mark.parametrize("case", list(DEGENERATE), ids=list(DEGENERATE))
def test_a_degenerate_study_of_many_systems_draws_and_exports(case: str):
    systems, rows = DEGENERATE[case]
    report = _report(systems, rows)
    plots = report_figures(report)
    for svg in plots.values():
        assert ET.fromstring(base64.b64decode(svg)).tag.endswith("svg")
    assert ("pairwise" in plots) == any(r["choice"] != "both_bad" for r in rows)
    html = exports.report_html(Study(name="many"), report, plots, MANIFEST)
    assert html.count("data:image/svg+xml;base64,") == len(plots)
    assert 'id="pairwise-matrix"' in html and 'id="verdict-section"' not in html
    assert "<script>alert" not in html  # a system's name is text, never markup
    if SCRIPT in systems:
        assert ESCAPED in html


def _body(report: dict[str, Any]) -> str:
    return render_to_string(
        "analysis/_report_body.html", {"report": report, "plots": report_figures(report)}
    )


def test_the_results_of_many_systems_lead_with_the_ranking_and_escape_the_names():
    systems = ["orig", "adapted", SCRIPT]
    rows = [vote(f"q{k}", f"a{k % 3}", x, y, w)
            for k, (x, y, w) in enumerate([("orig", "adapted", "adapted"), ("orig", SCRIPT, SCRIPT),
                                           ("adapted", SCRIPT, "tie"), ("orig", "adapted", None)] * 3)]  # fmt: skip
    with translation.override("en"):
        full = _body(_report(systems, rows))
        preliminary = _body(build_preliminary(frame(rows), original="orig", adapted="adapted",
                                              systems=systems))  # fmt: skip
    ranking, matrix = full.index('id="ranking-section"'), full.index('id="pairwise-matrix"')
    assert (
        ranking < matrix < full.index('id="speed-section"') < full.index('id="agreement-section"')
    )
    for html in (full, preliminary):
        assert "<script>" not in html and ESCAPED in html
        for absent in ("verdict-section", "categories-section", "power-section", "win-fraction"):
            assert f'id="{absent}"' not in html
        assert 'id="pairwise-verdicts"' in html and "Holm-adjusted across the 2 pairs" in html
        assert "n=3" in html  # the votes of a pair in its matrix cell
    assert 'id="ranking"' in full and "data:image/svg+xml;base64," in full
    assert 'id="ranking-section"' not in preliminary  # the job computes the ranking
    assert "Annotators, agreement and the ranking are being computed" in preliminary


def test_each_pair_draws_from_its_own_seed():
    seeds = {_pair_seed(7, i, j) for i in range(12) for j in range(i + 1, 12)}
    assert len(seeds) == 66 and _pair_seed(7, 0, 1) == _pair_seed(7, 0, 1)
    assert _pair_seed(7, 0, 1) != _pair_seed(8, 0, 1)


def test_pairwise_verdicts_recover_the_order_of_simulated_strengths():
    rng = random.Random(5)
    strength = {"s0": 0.0, "s1": 0.5, "s2": 1.0, "s3": 2.0}
    names = list(strength)
    rows = []
    for q in range(60):
        for i, x in enumerate(names):
            for y in names[i + 1 :]:
                p = 1 / (1 + math.exp(strength[y] - strength[x]))
                rows.append(vote(f"q{q}", f"a{q % 7}", x, y, x if rng.random() < p else y))
    report = build_report(frame(rows), original="s0", adapted="s1", systems=names, rounds=50)
    assert [r["model"] for r in report["ranking"]["ratings"]] == ["s3", "s2", "s1", "s0"]
    strong = {(p["model"], p["opponent"]) for p in report["pairwise"]["pairs"] if p["significant"]}
    assert ("s3", "s0") in strong and ("s2", "s0") in strong
    assert all(strength[m] > strength[o] for m, o in strong)  # no significant reversal
