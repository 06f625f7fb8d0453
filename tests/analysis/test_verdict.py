from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from scipy.stats import t as student_t
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.sandwich_covariance import cov_cluster, cov_cluster_2groups

from sbs.analysis.stats.frame import vote_frame
from sbs.analysis.stats.verdict import (
    DEFAULT_INTERVAL,
    INTERVAL_METHODS,
    bootstrap_win_rate,
    logit_wald_interval,
    percentile_interval,
    rescaled_percentile_interval,
    sign_test,
    sign_tests,
    two_way_bootstrap_ratio,
    two_way_variance,
    verdict,
    verdict_from_outcomes,
    wilson_interval,
    wilson_intervals,
    win_rate_parts,
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
    args = (data["outcome"], data["question"], data["annotator"])
    first = bootstrap_win_rate(*args, rounds=300, seed=11, method="pigeonhole")
    again = bootstrap_win_rate(*args, rounds=300, seed=11, method="pigeonhole")
    other = bootstrap_win_rate(*args, rounds=300, seed=12, method="pigeonhole")
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
        data["outcome"],
        data["question"],
        data["annotator"],
        rounds=1000,
        seed=0,
        method="pigeonhole",
    )
    iid = bootstrap_win_rate(
        data["outcome"],
        np.arange(len(data)),
        np.zeros(len(data)),
        rounds=1000,
        seed=0,
        method="pigeonhole",
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


# ------------------------------------------------- two-way cluster-robust (CGM) interval

_PARTS = {"a": (1.0, 1.0), "tie": (0.5, 1.0), "b": (0.0, 1.0), "both_bad": (0.0, 0.0)}


def _cgm_by_loops(rows: list[tuple[str, str, str]]) -> tuple[float, float, float]:
    """(by_question, by_annotator, by_cell) of the ties-half rate, written out with loops."""
    num = [_PARTS[o][0] for _, _, o in rows]
    den = [_PARTS[o][1] for _, _, o in rows]
    r = sum(num) / sum(den)
    z = [(n - r * d) / sum(den) for n, d in zip(num, den, strict=True)]

    def term(key: int | None) -> float:
        sums: dict[object, float] = {}
        rated: set[object] = set()
        for row, zv, d in zip(rows, z, den, strict=True):
            k = (row[0], row[1]) if key is None else row[key]
            sums[k] = sums.get(k, 0.0) + zv
            if d:
                rated.add(k)
        g = len(rated)
        return g / (g - 1) * sum(v * v for v in sums.values())

    return term(0), term(1), term(None)


def test_cgm_variance_equals_the_formula_written_out_on_a_hand_made_design() -> None:
    # 3 questions x 2 annotators; cell (q3, u1) holds two votes, a both_bad vote is unrated.
    rows = [
        ("q1", "u1", "a"),
        ("q1", "u2", "tie"),
        ("q2", "u1", "b"),
        ("q2", "u2", "a"),
        ("q3", "u1", "a"),
        ("q3", "u1", "b"),
        ("q3", "u2", "both_bad"),
    ]
    q, a, o = (list(c) for c in zip(*rows, strict=True))
    num, den = win_rate_parts(o, "ties_half")
    var = two_way_variance(num, den, q, a)
    assert var is not None
    by_q, by_a, by_c = _cgm_by_loops(rows)
    assert var.estimate == pytest.approx(3.5 / 6)
    assert var.by_question == pytest.approx(by_q, rel=1e-12)
    assert var.by_annotator == pytest.approx(by_a, rel=1e-12)
    assert var.by_cell == pytest.approx(by_c, rel=1e-12)
    assert var.two_way == pytest.approx(by_q + by_a - by_c, rel=1e-12)
    assert var.variance == pytest.approx(max(by_q + by_a - by_c, by_q, by_a), rel=1e-12)
    # (q3, u2) holds only the unrated vote: 5 cells with a rated vote.
    assert (var.n_questions, var.n_annotators, var.n_cells) == (3, 2, 5)


def test_cgm_variance_equals_statsmodels_two_way_cluster_robust_covariance() -> None:
    # statsmodels' cov_cluster_2groups (CRV1, Cameron-Gelbach-Miller) on a mean, i.e. OLS
    # on a constant: with one regressor its correction is exactly G / (G - 1) per term.
    rng = np.random.default_rng(7)
    data = _grid_data(14, 6, seed=3, correlated=True).sample(frac=0.8, random_state=1)
    outcomes = np.where(rng.random(len(data)) < 0.2, "tie", data["outcome"])
    for kind in ("ties_half", "decisive"):
        num, den = win_rate_parts(outcomes, kind)
        q = pd.factorize(data["question"])[0]
        a = pd.factorize(data["annotator"])[0]
        var = two_way_variance(num, den, q, a)
        assert var is not None
        keep = den > 0
        fit = OLS(num[keep], np.ones((int(keep.sum()), 1))).fit()
        both, by_q, by_a = cov_cluster_2groups(fit, q[keep], a[keep])
        assert fit.params[0] == pytest.approx(var.estimate, rel=1e-12)
        assert var.two_way == pytest.approx(both[0, 0], rel=1e-10)
        assert var.by_question == pytest.approx(by_q[0, 0], rel=1e-10)
        assert var.by_annotator == pytest.approx(by_a[0, 0], rel=1e-10)


def test_one_annotator_gives_the_one_way_cluster_variance_by_question() -> None:
    data = _grid_data(20, 1, seed=5, correlated=True)
    data = pd.concat([data, _grid_data(20, 1, seed=6, correlated=True)])  # two votes a question
    num, den = win_rate_parts(data["outcome"])
    var = two_way_variance(num, den, data["question"], data["annotator"])
    assert var is not None
    q = pd.factorize(data["question"])[0]
    one_way = cov_cluster(OLS(num, np.ones((len(num), 1))).fit(), q)[0, 0]
    # Written out: G / (G - 1) * sum over questions of (sum of residuals)^2 / n^2.
    res = pd.Series(num - num.mean()).groupby(q).sum()
    assert one_way == pytest.approx(20 / 19 * (res**2).sum() / len(num) ** 2, rel=1e-12)
    assert var.variance == pytest.approx(one_way, rel=1e-12)
    assert var.by_annotator == 0.0 and var.two_way == pytest.approx(0.0, abs=1e-15)
    assert var.df == 19


def test_one_vote_per_question_and_annotator_gives_the_iid_variance() -> None:
    rng = np.random.default_rng(2)
    outcomes = rng.choice(["a", "b", "tie", "both_bad"], size=60, p=[0.4, 0.3, 0.2, 0.1])
    num, den = win_rate_parts(outcomes)
    var = two_way_variance(num, den, np.arange(60), np.arange(60) + 1000)
    assert var is not None
    y = num[den > 0]
    n = len(y)
    assert var.variance == pytest.approx(y.var(ddof=1) / n, rel=1e-12)
    assert var.df == n - 1
    # The reported interval: logit(r) ± t_{n-1} · se / (r (1 - r)), mapped back.
    got = bootstrap_win_rate(outcomes, np.arange(60), np.arange(60) + 1000)
    r, se = y.mean(), math.sqrt(y.var(ddof=1) / n)
    half = student_t.ppf(0.975, n - 1) * se / (r * (1 - r))
    assert (got.low, got.high) == pytest.approx((expit(logit(r) - half), expit(logit(r) + half)))
    assert got.interval_method == DEFAULT_INTERVAL == "cgm_logit"
    assert got.method == INTERVAL_METHODS["cgm_logit"] and got.std_error == pytest.approx(se)


def test_rescaled_interval_keeps_the_percentile_shape_and_sets_the_width() -> None:
    reps = np.random.default_rng(0).gamma(4.0, 0.05, size=4000)
    r = float(np.median(reps))
    low, high = percentile_interval(reps)
    assert low is not None and high is not None
    same = rescaled_percentile_interval(reps, r, float(reps.var(ddof=1)))
    assert same == pytest.approx((low, high), rel=1e-12)
    half = rescaled_percentile_interval(reps, r, float(reps.var(ddof=1)) / 4)
    assert half == pytest.approx((r + (low - r) / 2, r + (high - r) / 2), rel=1e-12)
    data = _grid_data(12, 5, seed=2, correlated=True)
    args = (data["outcome"], data["question"], data["annotator"])
    got = bootstrap_win_rate(*args, rounds=300, seed=4, method="cgm_rescaled")
    num, den = win_rate_parts(data["outcome"])
    var = two_way_variance(num, den, data["question"], data["annotator"])
    assert var is not None
    boot = two_way_bootstrap_ratio(num, den, *args[1:], rounds=300, seed=4)
    want = rescaled_percentile_interval(boot, var.estimate, var.variance, df=var.df)
    assert (got.low, got.high) == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="unknown interval method"):
        bootstrap_win_rate(*args, method="normal")  # type: ignore[arg-type]


def _crossed_study(rng: np.random.Generator, n_q: int, n_a: int) -> pd.DataFrame:
    """Latent logit 0.4 + u_q + v_a, u ~ N(0, 1), v ~ N(0, 0.3²); 15 % ties."""
    u = rng.normal(0.0, 1.0, (n_q, 1))
    v = rng.normal(0.0, 0.3, (1, n_a))
    p = expit(0.4 + u + v)
    draw = rng.random((n_q, n_a))
    outcome = np.where(rng.random((n_q, n_a)) < 0.15, "tie", np.where(draw < p, "a", "b"))
    qq, aa = np.meshgrid(np.arange(n_q), np.arange(n_a), indexing="ij")
    return pd.DataFrame(
        {"question": qq.ravel(), "annotator": aa.ravel(), "outcome": outcome.ravel()}
    )


def test_simulated_crossed_studies_cgm_is_narrower_than_pigeonhole_and_covers() -> None:
    # The population rate (ties half): 0.075 + 0.85 · E[sigmoid(0.4 + N(0, 1.09))].
    x, w = np.polynomial.hermite.hermgauss(80)
    truth = 0.075 + 0.85 * float(w @ expit(0.4 + math.sqrt(2 * 1.09) * x)) / math.sqrt(math.pi)
    rng = np.random.default_rng(2024)
    hits = {"cgm_logit": 0, "pigeonhole": 0}
    widths = {"cgm_logit": 0.0, "pigeonhole": 0.0}
    studies = 150
    for k in range(studies):
        d = _crossed_study(rng, 40, 10)
        for method in hits:
            got = bootstrap_win_rate(
                d["outcome"], d["question"], d["annotator"], rounds=200, seed=k, method=method
            )  # type: ignore[arg-type]
            assert got.low is not None and got.high is not None
            hits[method] += got.low <= truth <= got.high
            widths[method] += got.high - got.low
    assert widths["cgm_logit"] < 0.92 * widths["pigeonhole"]
    assert hits["cgm_logit"] >= 0.9 * studies  # nominal 95 %; measured 94-95 % in the bench


@pytest.mark.parametrize(
    ("outcomes", "half", "decisive"),
    [
        (["a"], (1.0, 1.0), (1.0, 1.0)),  # one vote
        (["a"] * 9, (1.0, 1.0), (1.0, 1.0)),  # all left
        (["tie"] * 6, (0.5, 0.5), (None, None)),  # all ties: no decisive vote
        (["tie", "both_bad", "tie"], (0.5, 0.5), (None, None)),
        (["both_bad"] * 4, (None, None), (None, None)),  # nothing rated
    ],
)
def test_degenerate_studies_give_a_point_or_none(
    outcomes: list[str],
    half: tuple[float | None, float | None],
    decisive: tuple[float | None, float | None],
) -> None:
    n = len(outcomes)
    for method in INTERVAL_METHODS:
        v = verdict_from_outcomes(
            outcomes, [f"q{k % 3}" for k in range(n)], [f"u{k % 2}" for k in range(n)],
            rounds=50, method=method,  # type: ignore[arg-type]
        )  # fmt: skip
        assert v.bootstrap_ties_half is not None and v.bootstrap_decisive is not None
        assert (v.bootstrap_ties_half.low, v.bootstrap_ties_half.high) == half, method
        assert (v.bootstrap_decisive.low, v.bootstrap_decisive.high) == decisive, method
        json.dumps(v.to_dict(), allow_nan=False)
    assert logit_wald_interval(0.7, 0.0) == (0.7, 0.7)
    assert logit_wald_interval(1.0, 0.01) == (pytest.approx(1 - 1.96 * 0.1, abs=1e-3), 1.0)
    assert logit_wald_interval(0.5, -1.0) == (None, None)


def test_verdict_reports_which_interval_it_prints(small_frame: pd.DataFrame) -> None:
    v = verdict(small_frame, "adapted", "original", rounds=200, seed=5)
    assert v.bootstrap_ties_half is not None
    d = json.loads(json.dumps(v.to_dict()))["bootstrap_ties_half"]
    assert d["interval_method"] == "cgm_logit" and "Cameron-Gelbach-Miller" in d["method"]
    assert d["std_error"] > 0 and d["df"] >= 1
    low, high = d["low"], d["high"]
    assert low < v.win_rate_ties_half < high
    old = verdict(small_frame, "adapted", "original", rounds=200, seed=5, method="pigeonhole")
    assert old.bootstrap_ties_half is not None
    assert old.bootstrap_ties_half.interval_method == "pigeonhole"
    assert old.bootstrap_ties_half.std_error is None


def test_the_analytic_interval_needs_no_rounds_so_the_preliminary_report_has_it(small_frame):
    """cgm_logit resamples nothing: rounds=0 (the preliminary report) gives the same interval
    as the full report; the bootstrap methods still wait for rounds."""
    quick = verdict(small_frame, "adapted", "original", rounds=0)
    full = verdict(small_frame, "adapted", "original", rounds=500)
    assert quick.bootstrap_ties_half is not None and quick.bootstrap_decisive is not None
    assert (quick.bootstrap_ties_half.low, quick.bootstrap_ties_half.high) == (
        full.bootstrap_ties_half.low,
        full.bootstrap_ties_half.high,
    )
    assert (
        verdict(
            small_frame, "adapted", "original", rounds=0, method="pigeonhole"
        ).bootstrap_ties_half
        is None
    )
