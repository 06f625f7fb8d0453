from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from sbs.analysis.stats.frame import vote_frame
from sbs.analysis.stats.verdict import (
    bootstrap_win_rate,
    percentile_interval,
    sign_test,
    sign_tests,
    two_way_bootstrap_ratio,
    verdict,
    wilson_interval,
    wilson_intervals,
)

from .conftest import make_votes


def test_counts_rates_and_policy(small_frame: pd.DataFrame) -> None:
    v = verdict(small_frame, "adapted", "original", rounds=200, seed=5)
    assert (v.wins, v.losses, v.ties, v.both_bad, v.n_votes) == (12, 5, 3, 2, 22)
    assert v.win_rate_ties_half == pytest.approx((12 + 1.5) / 20)  # both_bad not in denominator
    assert v.win_rate_decisive == pytest.approx(12 / 17)
    assert v.both_bad_share == pytest.approx(2 / 22)
    assert v.win_share == pytest.approx(12 / 22)
    assert v.bootstrap_ties_half is not None and v.bootstrap_ties_half.seed == 5
    reversed_ = verdict(small_frame, "original", "adapted", rounds=0)
    assert (reversed_.wins, reversed_.losses) == (5, 12)
    assert reversed_.sign_test_p == pytest.approx(v.sign_test_p)
    assert json.loads(json.dumps(v.to_dict()))["bootstrap_ties_half"]["seed"] == 5


@pytest.mark.parametrize(("k", "n"), [(0, 10), (7, 10), (30, 41), (1000, 1990), (10, 10)])
def test_wilson_matches_closed_form(k: int, n: int) -> None:
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(centre - half, abs=1e-12)
    assert high == pytest.approx(centre + half, abs=1e-12)
    assert wilson_interval(0, 0) == (None, None)


@pytest.mark.parametrize(("w", "l"), [(12, 5), (5, 12), (10, 10), (0, 7), (30, 11)])
def test_sign_test_matches_hand_binomial_sum(w: int, l: int) -> None:  # noqa: E741
    n = w + l
    pmf = [math.comb(n, k) / 2**n for k in range(n + 1)]
    tail = sum(pmf[k] for k in range(n + 1) if pmf[k] <= pmf[w] * (1 + 1e-7))
    assert sign_test(w, l) == pytest.approx(min(1.0, tail), rel=1e-9)
    lo = min(w, l)
    assert sign_test(w, l) == pytest.approx(min(1.0, 2 * sum(pmf[: lo + 1])), rel=1e-9)
    assert sign_test(0, 0) is None


def _grid_data(n_q: int, n_a: int, seed: int, correlated: bool) -> pd.DataFrame:
    """One vote per (question, annotator) cell."""
    rng = np.random.default_rng(seed)
    p_q = np.where(rng.random(n_q) < 0.5, 0.05, 0.95) if correlated else np.full(n_q, 0.5)
    rows = []
    for q in range(n_q):
        for a in range(n_a):
            rows.append((f"q{q}", f"u{a}", "a" if rng.random() < p_q[q] else "b"))
    return pd.DataFrame(rows, columns=["question", "annotator", "outcome"])


def _reference_two_way(data: pd.DataFrame, rounds: int, seed: int) -> list[float]:
    """Explicit pigeonhole bootstrap: materialise every vote of each drawn (q, a) cell."""
    qs = list(pd.unique(data["question"]))
    ann = list(pd.unique(data["annotator"]))
    cell = {(r.question, r.annotator): r.outcome for r in data.itertuples()}
    rng = np.random.default_rng(seed)
    q_parts, a_parts = [], []
    for start in range(0, rounds, 256):  # documented draw order: blocks of 256 rounds
        k = min(256, rounds - start)
        q_parts.append(rng.integers(0, len(qs), size=(k, len(qs))))
        a_parts.append(rng.integers(0, len(ann), size=(k, len(ann))))
    q_draw, a_draw = np.vstack(q_parts), np.vstack(a_parts)
    out = []
    for r in range(rounds):
        score = votes = 0.0
        for qi in q_draw[r]:
            for ai in a_draw[r]:
                outcome = cell.get((qs[qi], ann[ai]))
                if outcome is not None:
                    score += {"a": 1.0, "tie": 0.5, "b": 0.0}[outcome]
                    votes += 1
        out.append(score / votes)
    return out


def test_two_way_bootstrap_reproducible_and_equal_to_explicit_resampling() -> None:
    data = _grid_data(12, 5, seed=2, correlated=True)
    data.loc[3, "outcome"] = "tie"
    first = bootstrap_win_rate(
        data["outcome"], data["question"], data["annotator"], rounds=300, seed=11
    )
    again = bootstrap_win_rate(
        data["outcome"], data["question"], data["annotator"], rounds=300, seed=11
    )
    other = bootstrap_win_rate(
        data["outcome"], data["question"], data["annotator"], rounds=300, seed=12
    )
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)
    reference = _reference_two_way(data, rounds=300, seed=11)
    assert (first.low, first.high) == pytest.approx(percentile_interval(reference), abs=1e-12)
    num = (data["outcome"] == "a") + 0.5 * (data["outcome"] == "tie")
    reps = two_way_bootstrap_ratio(
        num, np.ones(len(data)), data["question"], data["annotator"], rounds=300, seed=11
    )
    np.testing.assert_allclose(reps, reference, atol=1e-12)


def _widths(data: pd.DataFrame) -> tuple[float, float]:
    clustered = bootstrap_win_rate(
        data["outcome"], data["question"], data["annotator"], rounds=1000, seed=0
    )
    iid = bootstrap_win_rate(
        data["outcome"], np.arange(len(data)), np.zeros(len(data)), rounds=1000, seed=0
    )
    assert None not in (clustered.low, clustered.high, iid.low, iid.high)
    return clustered.high - clustered.low, iid.high - iid.low  # type: ignore[operator]


def test_two_way_bootstrap_wider_than_iid_when_votes_correlate_within_questions() -> None:
    clustered, iid = _widths(_grid_data(40, 20, seed=4, correlated=True))
    # Intra-question correlation ~0.8 with 20 votes per question: design effect ~16.
    assert clustered > 3.0 * iid
    # Without correlation the pigeonhole bootstrap is only mildly conservative: its variance
    # counts the residual term about three times (Owen 2007), so widths differ by <~ sqrt(3).
    clustered, iid = _widths(_grid_data(40, 20, seed=4, correlated=False))
    assert iid < clustered < 2.0 * iid


def test_verdict_from_frame_uses_clustered_bootstrap() -> None:
    data = _grid_data(15, 4, seed=1, correlated=True)
    frame = make_votes(
        list(data["outcome"]), questions=list(data["question"]), annotators=list(data["annotator"])
    )
    v = verdict(frame, "adapted", "original", rounds=400, seed=3)
    direct = bootstrap_win_rate(
        data["outcome"], data["question"], data["annotator"], rounds=400, seed=3
    )
    assert v.bootstrap_ties_half == direct
    assert v.n_questions == 15 and v.n_annotators == 4


def test_empty_pair_gives_nones() -> None:
    frame = vote_frame(make_votes(["a"]).iloc[:0])
    v = verdict(frame, "adapted", "original")
    assert v.n_votes == 0 and v.win_rate_decisive is None and v.bootstrap_decisive is None
    json.dumps(v.to_dict())


def test_wilson_interval_always_holds_its_point_and_stays_in_0_1() -> None:
    # In floating point, 10 of 10 gave an upper bound of 0.9999999999999999 < 1.0 (and
    # 0 of 3 a lower bound above 0): the position-bias plot then refused the
    # negative whisker and the report job failed.
    for n in range(1, 400):
        for k in (0, 1, n // 2, n - 1, n):
            low, high = wilson_interval(k, n)
            assert low is not None and high is not None
            assert 0.0 <= low <= k / n <= high <= 1.0, (k, n, low, high)
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(0, 3)[0] == 0.0
    low, high = wilson_intervals([0, 12, 3], [0, 12, 10])
    assert np.isnan(low[0]) and np.isnan(high[0]) and high[1] == 1.0
    assert (low[2], high[2]) == pytest.approx(wilson_interval(3, 10), abs=1e-15)


def test_vectorised_sign_tests_equal_the_exact_binomial_test() -> None:
    ks, ns = zip(*[(k, n) for n in range(0, 120) for k in range(n + 1)], strict=True)
    got = sign_tests(ks, ns)
    for k, n, p in zip(ks, ns, got, strict=True):
        if n == 0:
            assert np.isnan(p)
        else:
            assert p == pytest.approx(sign_test(k, n - k), rel=1e-12)
