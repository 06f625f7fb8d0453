from __future__ import annotations

import math

import pytest

from sbs.analysis.stats.power import required_decisive_votes, votes_needed


def test_required_votes_formula() -> None:
    # p = 0.6: n = (1.959964*0.5 + 0.841621*sqrt(0.24))^2 / 0.01 = 193.6... -> 194
    n = (1.959963984540054 * 0.5 + 0.8416212335729143 * math.sqrt(0.24)) ** 2 / 0.1**2
    assert required_decisive_votes(0.6) == math.ceil(n) == 194
    assert required_decisive_votes(0.4) == 194
    assert required_decisive_votes(1.0) == math.ceil((1.959963984540054 * 0.5) ** 2 / 0.25)
    assert required_decisive_votes(0.5) is None


def test_votes_needed() -> None:
    est = votes_needed(60, 40, questions=25)  # p = 0.6, 4 decisive votes per question
    assert est.required_decisive_votes == 194
    assert est.additional_decisive_votes == 94
    assert est.additional_questions == math.ceil(94 / 4)
    assert est.reachable
    done = votes_needed(600, 400, questions=250)
    assert done.additional_decisive_votes == 0 and done.additional_questions == 0


def test_votes_needed_at_exactly_half_is_unreachable() -> None:
    est = votes_needed(50, 50, questions=10)
    assert not est.reachable
    assert est.required_decisive_votes is None and est.additional_questions is None
    assert est.to_dict()["additional_decisive_votes"] is None
    empty = votes_needed(0, 0, questions=0)
    assert empty.win_rate is None and not empty.reachable


def test_rejects_impossible_rate() -> None:
    with pytest.raises(ValueError):
        required_decisive_votes(1.5)
