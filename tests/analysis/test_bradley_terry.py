from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.optimize import minimize
from scipy.special import expit

from sbs.analysis.stats.bradley_terry import (
    Cells,
    bootstrap_log_strengths,
    bradley_terry,
    cells_from_codes,
    draw_cell_counts,
    fit_bradley_terry,
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
