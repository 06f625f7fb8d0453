from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.optimize import minimize
from scipy.special import expit

from sbs.analysis.stats import bradley_terry as bt
from sbs.analysis.stats.bradley_terry import (
    BOOT_TOL,
    POISSON_MIN_VOTES,
    Cells,
    Draw,
    TieModel,
    bootstrap_log_strengths,
    bradley_terry,
    cells_from_codes,
    draw_cell_counts,
    draw_pair_counts,
    fit_bradley_terry,
    pair_counts,
    resolve_draw,
    to_elo,
    vote_cells,
    win_fraction_matrix,
)
from sbs.analysis.stats.frame import vote_frame

MODELS = ["m0", "m1", "m2", "m3"]
TRUE_THETA = np.array([0.0, 0.4, -0.3, 0.9])


def _votes(n: int, seed: int, tie_share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per vote: model_a index, model_b index, outcome code (2 a wins, 1 tie, 0 b wins)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, n)
    b = (a + rng.integers(1, 4, n)) % 4
    a_wins = rng.random(n) < expit(TRUE_THETA[a] - TRUE_THETA[b])
    tie = rng.random(n) < tie_share
    return a, b, np.where(tie, 1, np.where(a_wins, 2, 0))


def _frame(a: np.ndarray, b: np.ndarray, code: np.ndarray, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for k, (i, j, o) in enumerate(zip(a, b, code, strict=True)):
        left_is_a = rng.random() < 0.5
        left = MODELS[i] if left_is_a else MODELS[j]
        if o == 1:
            choice = "tie"
        else:
            a_won = o == 2
            choice = "left" if a_won == left_is_a else "right"
        rows.append(
            {
                "question": f"q{k % 50}",
                "category": "c",
                "annotator": f"u{k % 7}",
                "model_a": MODELS[i],
                "model_b": MODELS[j],
                "left": left,
                "choice": choice,
                "seconds": 1.0,
            }
        )
    return vote_frame(rows)


def test_matches_statsmodels_logit_without_ties() -> None:
    a, b, code = _votes(3000, seed=1, tie_share=0.0)
    # Independent fit: per-vote logistic regression, +1/-1 design, no intercept, m0 dropped.
    design = np.zeros((len(a), 4))
    design[np.arange(len(a)), a] = 1.0
    design[np.arange(len(a)), b] = -1.0
    logit = sm.Logit((code == 2).astype(float), design[:, 1:]).fit(disp=0, tol=1e-12)
    reference = np.concatenate([[0.0], logit.params])
    fit = fit_bradley_terry(cells_from_codes(a, b, code, 4))
    assert fit.converged
    np.testing.assert_allclose(fit.log_strength - fit.log_strength[0], reference, atol=1e-6)
    assert fit.log_strength.sum() == pytest.approx(0.0, abs=1e-12)


def _per_vote_half_ll(theta_rest: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray) -> float:
    theta = np.concatenate([[0.0], theta_rest])
    p = expit(theta[a] - theta[b])
    return -float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_ties_as_half_matches_per_vote_likelihood() -> None:
    a, b, code = _votes(2000, seed=2, tie_share=0.25)
    y = code / 2.0
    res = minimize(
        _per_vote_half_ll, np.zeros(3), args=(a, b, y), method="BFGS", options={"gtol": 1e-9}
    )
    fit = fit_bradley_terry(cells_from_codes(a, b, code, 4))
    np.testing.assert_allclose(fit.log_strength - fit.log_strength[0], [0.0, *res.x], atol=2e-5)


def test_davidson_matches_per_vote_likelihood() -> None:
    a, b, code = _votes(2000, seed=3, tie_share=0.3)

    def nll(params: np.ndarray) -> float:
        pi = np.exp(np.concatenate([[0.0], params[:3]]))
        nu = math.exp(params[3])
        denom = pi[a] + pi[b] + nu * np.sqrt(pi[a] * pi[b])
        prob = np.where(code == 2, pi[a], np.where(code == 0, pi[b], nu * np.sqrt(pi[a] * pi[b])))
        return -float(np.sum(np.log(prob / denom)))

    res = minimize(
        nll,
        np.zeros(4),
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 20000, "maxfev": 20000},
    )
    fit = fit_bradley_terry(cells_from_codes(a, b, code, 4), ties="davidson")
    assert fit.converged and fit.nu is not None
    np.testing.assert_allclose(fit.log_strength - fit.log_strength[0], [0.0, *res.x[:3]], atol=1e-4)
    assert fit.nu == pytest.approx(math.exp(res.x[3]), rel=1e-4)


def test_batched_bootstrap_equals_separate_fits_per_round() -> None:
    a, b, code = _votes(1500, seed=4, tie_share=0.2)
    cells = cells_from_codes(a, b, code, 4)
    point = fit_bradley_terry(cells)
    counts = draw_cell_counts(cells, rounds=4, seed=9)
    theta, ok = bootstrap_log_strengths(cells, point, counts)
    assert ok.all()
    y = cells.outcome / 2.0
    for r in range(4):
        weights = counts[r]

        def nll(rest: np.ndarray, w: np.ndarray = weights) -> float:
            t = np.concatenate([[0.0], rest])
            p = expit(t[cells.i] - t[cells.j])
            return -float(np.sum(w * (y * np.log(p) + (1 - y) * np.log(1 - p))))

        res = minimize(nll, np.zeros(3), method="BFGS", options={"gtol": 1e-8})
        np.testing.assert_allclose(theta[r] - theta[r, 0], [0.0, *res.x], atol=2e-5)


def test_cells_match_numpy_unique_rows() -> None:
    a, b, code = _votes(500, seed=5, tie_share=0.2)
    cells = cells_from_codes(a, b, code, 4)
    rows, counts = np.unique(np.column_stack([a, b, code]), axis=0, return_counts=True)
    np.testing.assert_array_equal(np.column_stack([cells.i, cells.j, cells.outcome]), rows)
    np.testing.assert_array_equal(cells.count, counts)


def test_elo_scale_and_win_fraction() -> None:
    assert to_elo(np.array([0.0]))[0] == 1000.0
    assert to_elo(np.array([math.log(10)]))[0] == pytest.approx(1400.0)
    cells = Cells(
        i=np.array([0, 0, 1]),
        j=np.array([1, 1, 0]),
        outcome=np.array([2, 1, 2]),
        count=np.array([3.0, 2.0, 1.0]),
        n_models=2,
    )
    fractions = win_fraction_matrix(cells)
    assert fractions[0, 1] == pytest.approx((3 + 1) / 6)
    assert fractions[1, 0] == pytest.approx((1 + 1) / 6)
    assert math.isnan(fractions[0, 0])
    # Two models: the MLE is the log-odds of the tie-half score.
    fit = fit_bradley_terry(cells)
    assert fit.log_strength[0] - fit.log_strength[1] == pytest.approx(math.log(4 / 2))


def test_bradley_terry_on_frame_is_side_invariant_and_serialisable() -> None:
    a, b, code = _votes(800, seed=6, tie_share=0.15)
    frame = _frame(a, b, code)
    result = bradley_terry(frame, rounds=200, seed=3)
    fit = fit_bradley_terry(cells_from_codes(a, b, code, 4))
    by_model = {r.model: r for r in result.ratings}
    for k, m in enumerate(MODELS):
        assert by_model[m].elo == pytest.approx(to_elo(fit.log_strength)[k])
        assert by_model[m].elo_low < by_model[m].elo < by_model[m].elo_high  # type: ignore[operator]
    assert [r.rank for r in result.ratings] == [1, 2, 3, 4]
    assert result.ratings[0].model == "m3"
    assert result.converged and result.rounds_not_converged == 0
    again = bradley_terry(_frame(a, b, code, seed=99), rounds=200, seed=3)  # other screen sides
    assert again.to_dict() == result.to_dict()
    json.dumps(result.to_dict())


def test_both_bad_policy() -> None:
    frame = vote_frame(
        [
            {"question": "q", "category": "c", "annotator": "u", "model_a": "x", "model_b": "y",
             "left": "x", "choice": choice, "seconds": 1.0}
            for choice in ["left", "left", "right", "both_bad", "both_bad"]
        ]
    )  # fmt: skip
    _, excluded = vote_cells(frame)
    _, as_tie = vote_cells(frame, both_bad="tie")
    assert excluded.n_votes == 3 and as_tie.n_votes == 5


def test_mle_that_does_not_exist_is_flagged() -> None:
    cells = cells_from_codes([0, 0, 1], [1, 2, 2], [2, 2, 2], 3)  # m0 never loses
    fit = fit_bradley_terry(cells, max_iter=30)
    assert not fit.converged
    assert fit_bradley_terry(cells, l2=0.1).converged


def test_davidson_on_frame_with_bootstrap() -> None:
    a, b, code = _votes(600, seed=8, tie_share=0.3)
    result = bradley_terry(_frame(a, b, code), ties="davidson", rounds=100, seed=1)
    fit = fit_bradley_terry(cells_from_codes(a, b, code, 4), ties="davidson")
    assert result.tie_nu == pytest.approx(fit.nu)
    for rating in result.ratings:
        assert rating.elo_low < rating.elo < rating.elo_high  # type: ignore[operator]
    assert result.rounds_not_converged == 0


def test_bootstrap_rounds_without_mle_are_counted() -> None:
    # Two models, 3 decisive votes 2:1: some resamples are 3:0 and have no finite MLE.
    a, b, code = np.array([0, 0, 0]), np.array([1, 1, 1]), np.array([2, 2, 0])
    result = bradley_terry(_frame(a, b, code), rounds=50, seed=0)
    assert result.converged
    assert 0 < result.rounds_not_converged < 50


# ---------------------------------------------------------------- draws and the fast bootstrap

BOOT_TOL_ELO = BOOT_TOL * 400 / math.log(10)


def _many_votes(n: int, m: int, seed: int, tie_share: float = 0.2) -> Cells:
    """n votes among m models with strengths N(0, 0.7²), random pairs."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 0.7, m)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    a_wins = rng.random(n) < expit(theta[a] - theta[b])
    tie = rng.random(n) < tie_share
    return cells_from_codes(a, b, np.where(tie, 1, np.where(a_wins, 2, 0)), m)


def _tight(
    cells: Cells, counts: np.ndarray, ties: TieModel = "half", l2: float = 0.0
) -> np.ndarray:
    """Reference per-round θ: damped Newton to 1e-12 nats, no chord."""
    point = fit_bradley_terry(cells, ties, l2=l2)
    pm = bt._pair_map(cells)
    p = len(pm.lo)
    x0 = point.log_strength
    if ties == "davidson":
        x0 = np.append(x0, math.log(point.nu or 1e-6))
    problem = bt._Problem(
        pm.lo, pm.hi, cells.n_models, counts[:, :p], counts[:, p : 2 * p], counts[:, 2 * p :],
        ties, l2,
    )  # fmt: skip
    x, ok, _ = bt._newton(problem, np.tile(x0, (len(counts), 1)), 1e-12, 200)
    assert ok.all()
    theta = x[:, : cells.n_models]
    centred: np.ndarray = theta - theta.mean(axis=1, keepdims=True)
    return centred


def test_cell_draw_is_the_arena_multinomial() -> None:
    cells = _many_votes(2000, 5, seed=11)
    expected = np.random.default_rng(4).multinomial(
        cells.n_votes, cells.count / cells.count.sum(), size=7
    )
    np.testing.assert_array_equal(draw_cell_counts(cells, 7, seed=4), expected)
    assert draw_cell_counts(cells, 3, seed=4, draw="poisson").shape == (3, len(cells.count))


def test_pair_counts_merge_cells_and_both_inputs_give_the_same_rounds() -> None:
    cells = _many_votes(3000, 5, seed=12)
    columns = pair_counts(cells)
    assert columns.sum() == cells.n_votes and len(columns) == 3 * 10
    point = fit_bradley_terry(cells)
    per_cell = draw_cell_counts(cells, 20, seed=1)
    per_pair = np.array(
        [
            pair_counts(Cells(cells.i, cells.j, cells.outcome, row, cells.n_models))
            for row in per_cell
        ]
    )
    a, ok_a = bootstrap_log_strengths(cells, point, per_cell)
    b, ok_b = bootstrap_log_strengths(cells, point, per_pair, per="pair")
    assert ok_a.all() and ok_b.all()
    np.testing.assert_allclose(a, b, atol=1e-12)
    with pytest.raises(ValueError):
        bootstrap_log_strengths(cells, point, per_cell, per="pair")


def test_poisson_draw_moments_match_theory_and_the_multinomial() -> None:
    # Few columns with large shares, so Poisson (var c) and multinomial (var c(1 - c/N))
    # differ per column; both must hit their own law, and the shares c*/N* must agree.
    counts = np.array([50.0, 30.0, 20.0, 5.0, 1.0])
    n, draws = counts.sum(), 40_000
    rng = np.random.default_rng(0)
    poisson = bt._draw(counts, draws, 7, "poisson")
    multinomial = bt._draw(counts, draws, 8, "multinomial")
    assert (multinomial.sum(axis=1) == n).all()
    assert not (poisson.sum(axis=1) == n).all()

    def check(sample: np.ndarray, mean: np.ndarray, var: np.ndarray, kurt: np.ndarray) -> None:
        # SE of a sample mean √(var/n); of a sample variance var·√(2/(n−1) + κ/n), κ the
        # excess kurtosis. Five SE: a false alarm about once in 3·10^6 per column.
        k = len(sample)
        se_mean = np.sqrt(var / k)
        se_var = var * np.sqrt(2 / (k - 1) + kurt / k)
        assert (np.abs(sample.mean(axis=0) - mean) < 5 * se_mean).all()
        assert (np.abs(sample.var(axis=0, ddof=1) - var) < 5 * se_var).all()

    p = counts / n
    check(poisson, counts, counts, 1 / counts)
    check(multinomial, counts, n * p * (1 - p), (1 - 6 * p * (1 - p)) / (n * p * (1 - p)))
    # Shares: Var(c*/N*) = p(1 − p)/N for both, up to O(1/N²) for Poisson.
    shares_p = poisson / poisson.sum(axis=1, keepdims=True)
    shares_m = multinomial / n
    var_p, var_m = shares_p.var(axis=0, ddof=1), shares_m.var(axis=0, ddof=1)
    se = np.hypot(var_p, var_m) * math.sqrt(2 / draws) * 2  # heavy tails for tiny p: x2
    assert (np.abs(var_p - var_m) < 5 * se).all()
    assert (np.abs(var_m - p * (1 - p) / n) < 5 * se).all()
    del rng


def test_poisson_intervals_agree_with_the_exact_draw_within_monte_carlo_error() -> None:
    cells = _many_votes(20_000, 6, seed=13)
    point = fit_bradley_terry(cells)
    rounds = 4000
    bounds, ses = [], []
    for draw in ("multinomial", "poisson"):
        counts = draw_pair_counts(cells, rounds, seed=21, draw=draw)
        theta, ok = bootstrap_log_strengths(cells, point, counts, per="pair")
        assert ok.all()
        elo = np.sort(to_elo(theta), axis=0)
        bounds.append(np.quantile(elo, [0.025, 0.975], axis=0))
        # Order-statistic SE of a percentile: half the spread of ranks R·q ± √(R·q(1−q)).
        c = math.sqrt(rounds * 0.025 * 0.975)
        lo = [int(rounds * q - c) for q in (0.025, 0.975)]
        hi = [int(math.ceil(rounds * q + c)) for q in (0.025, 0.975)]
        ses.append(np.array([(elo[h] - elo[lo_]) / 2 for lo_, h in zip(lo, hi, strict=True)]))
    z = np.abs(bounds[0] - bounds[1]) / np.hypot(ses[0], ses[1])
    assert z.max() < 4.5, z
    widths = [b[1] - b[0] for b in bounds]
    assert abs(widths[1].mean() / widths[0].mean() - 1) < 0.03
    # Draw for draw, the same interval as the Arena's cell multinomial: different streams
    # only, so a mean width within a few per cent as well.
    cell_theta, _ = bootstrap_log_strengths(cells, point, draw_cell_counts(cells, rounds, seed=5))
    cell_bounds = np.quantile(to_elo(cell_theta), [0.025, 0.975], axis=0)
    assert abs((cell_bounds[1] - cell_bounds[0]).mean() / widths[0].mean() - 1) < 0.03


@pytest.mark.parametrize(
    ("n", "m", "ties", "l2", "draw"),
    [
        (50_000, 12, "half", 0.0, "poisson"),
        (5000, 4, "davidson", 0.0, "multinomial"),
        (3000, 6, "half", 0.5, "poisson"),
        (1500, 20, "half", 0.0, "poisson"),  # sparse: many rounds go to damped Newton
    ],
)
def test_loose_tolerance_rounds_agree_with_fully_converged_ones(
    n: int, m: int, ties: TieModel, l2: float, draw: Draw, monkeypatch: pytest.MonkeyPatch
) -> None:
    cells = _many_votes(n, m, seed=14)
    point = fit_bradley_terry(cells, ties, l2=l2)
    counts = draw_pair_counts(cells, 300, seed=3, draw=draw)
    exact = to_elo(_tight(cells, counts, ties, l2))
    newton_rounds = []
    newton = bt._newton

    def counting(
        problem: bt._Problem, x0: np.ndarray, tol: float, max_iter: int
    ) -> tuple[np.ndarray, np.ndarray, int]:
        newton_rounds.append(len(x0))
        return newton(problem, x0, tol, max_iter)

    monkeypatch.setattr(bt, "_newton", counting)
    theta, ok = bootstrap_log_strengths(cells, point, counts, ties, l2=l2, per="pair")
    assert ok.all()
    err = np.abs(to_elo(theta) - exact).max()
    assert err < BOOT_TOL_ELO  # the documented bound, < 0.01 Elo by far
    if n == 1500:
        assert 0 < sum(newton_rounds) < 300  # the fallback ran, for some rounds only
    elif n == 50_000:
        assert sum(newton_rounds) == 0  # the chord did it all


def test_bootstrap_tolerance_is_obeyed() -> None:
    cells = _many_votes(30_000, 8, seed=15)
    point = fit_bradley_terry(cells)
    counts = draw_pair_counts(cells, 200, seed=4)
    exact = to_elo(_tight(cells, counts))
    for tol in (1e-4, 1e-5, 1e-7):
        theta, _ = bootstrap_log_strengths(cells, point, counts, tol=tol, per="pair")
        assert np.abs(to_elo(theta) - exact).max() < tol * 400 / math.log(10)


def test_resolve_draw_and_the_report_default() -> None:
    assert resolve_draw("auto", POISSON_MIN_VOTES) == "poisson"
    assert resolve_draw("auto", POISSON_MIN_VOTES - 1) == "multinomial"
    assert resolve_draw("multinomial", 10**9) == "multinomial"
    a, b, code = _votes(300, seed=16, tie_share=0.2)
    frame = _frame(a, b, code)
    assert bradley_terry(frame, rounds=50).draw == "multinomial"
    result = bradley_terry(frame, rounds=400, draw="poisson", seed=2)
    assert result.draw == "poisson" and result.rounds_not_converged == 0
    exact = bradley_terry(frame, rounds=400, draw="multinomial", seed=2)
    for r, e in zip(result.ratings, exact.ratings, strict=True):
        assert r.elo == e.elo
        assert r.elo_low == pytest.approx(e.elo_low, abs=15)  # MC error of 400 rounds: ~4
        assert r.elo_high == pytest.approx(e.elo_high, abs=15)


def _single_frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return vote_frame(
        [
            {"question": f"q{k}", "category": "c", "annotator": "u", "model_a": x,
             "model_b": y, "left": x, "choice": choice, "seconds": 1.0}
            for k, (x, y, choice) in enumerate(rows)
        ]
    )  # fmt: skip


@pytest.mark.parametrize("draw", ["multinomial", "poisson"])
def test_a_model_that_never_lost(draw: Draw) -> None:
    frame = _single_frame([("x", "y", "left")] * 5 + [("y", "z", "left"), ("z", "y", "left")] * 3)
    result = bradley_terry(frame, rounds=100, draw=draw)
    assert not result.converged  # x never lost: no MLE
    assert result.rounds_not_converged == 100  # no round has one either
    assert result.ratings[0].model == "x"


@pytest.mark.parametrize("draw", ["multinomial", "poisson"])
def test_one_vote(draw: Draw) -> None:
    decisive = bradley_terry(_single_frame([("x", "y", "left")]), rounds=100, draw=draw)
    assert not decisive.converged and decisive.rounds_not_converged == 100
    tie = bradley_terry(_single_frame([("x", "y", "tie")]), rounds=1000, draw=draw, seed=1)
    assert tie.converged
    for rating in tie.ratings:
        assert rating.elo == rating.elo_low == rating.elo_high == pytest.approx(1000.0)
    if draw == "multinomial":
        assert tie.rounds_not_converged == 0
    else:  # documented: a Poisson round is empty with probability e^−1
        expected = 1000 * math.exp(-1)
        assert abs(tie.rounds_not_converged - expected) < 5 * math.sqrt(expected)


@pytest.mark.parametrize("draw", ["multinomial", "poisson"])
def test_all_ties(draw: Draw) -> None:
    pairs = [("x", "y"), ("y", "z"), ("x", "z")] * 7
    result = bradley_terry(_single_frame([(a, b, "tie") for a, b in pairs]), rounds=200, draw=draw)
    assert result.converged and result.rounds_not_converged == 0
    for rating in result.ratings:
        assert rating.elo == pytest.approx(1000.0)
        assert rating.elo_low == pytest.approx(1000.0) and rating.elo_high == pytest.approx(1000.0)
