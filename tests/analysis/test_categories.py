from __future__ import annotations

import json

import pytest

from sbs.analysis.stats.categories import category_verdicts, holm
from sbs.analysis.stats.verdict import sign_test

from .conftest import make_votes


def test_holm_hand_computed() -> None:
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.04*1, 0.06) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, None, 0.01]) == pytest.approx([0.5, None, 0.02])
    assert holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_category_verdicts_flags_significant_losses() -> None:
    plan = {
        "code": ["b"] * 18 + ["a"] * 2 + ["both_bad"] * 4,  # adapted loses clearly
        "chat": ["a"] * 9 + ["b"] * 7 + ["tie"] * 2,  # no difference
        "math": ["a"] * 17 + ["b"] * 1,  # adapted wins clearly
        "poems": ["tie", "both_bad"],  # no decisive votes: no p-value
    }
    outcomes, categories = [], []
    for category, outs in plan.items():
        outcomes += outs
        categories += [category] * len(outs)
    frame = make_votes(outcomes, categories=categories, seed=7)
    report = category_verdicts(frame, "adapted", "original")
    by = {c.category: c for c in report.categories}
    assert [c.category for c in report.categories] == ["chat", "code", "math", "poems"]
    raw = [sign_test(9, 7), sign_test(2, 18), sign_test(17, 1)]
    expected = holm(raw)
    assert [by[c].sign_test_p_holm for c in ("chat", "code", "math")] == pytest.approx(expected)
    assert by["poems"].sign_test_p_holm is None
    assert report.flagged == ("code",)
    assert by["math"].adapted_wins and not by["math"].adapted_loses
    assert by["code"].verdict.both_bad_share == pytest.approx(4 / 24)
    assert by["code"].verdict.wilson_decisive[1] < 0.5  # type: ignore[operator]
    # Seen from the original model the flag moves.
    assert category_verdicts(frame, "original", "adapted").flagged == ("math",)
    assert json.loads(json.dumps(report.to_dict()))["flagged"] == ["code"]
