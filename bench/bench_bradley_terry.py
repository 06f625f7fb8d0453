"""Bench: batched Bradley-Terry bootstrap vs Chatbot Arena's per-round L-BFGS bootstrap.

Run single-core:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python bench/bench_bradley_terry.py

The baseline re-implements FastChat's ``compute_bt`` / ``compute_bootstrap_bt``
(``fastchat/serve/monitor/rating_systems.py``): votes collapsed into unique
(model_a, model_b, outcome) cells, one multinomial draw of the cell counts per round,
``scipy.optimize.minimize(method="L-BFGS-B")`` on the weighted log-likelihood per round
(run in a loop here instead of a process pool, to stay single-core).

Both sides use the same model order and seed, so they draw the same bootstrap samples;
"max |dElo|" columns compare point estimates and 2.5/97.5 % bounds.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.optimize import minimize  # noqa: E402
from scipy.special import expit  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sbs.analysis.stats.bradley_terry import (  # noqa: E402
    bootstrap_log_strengths,
    cells_from_codes,
    draw_cell_counts,
    fit_bradley_terry,
    to_elo,
)

# ---------------------------------------------------------------- baseline (FastChat)


def arena_preprocess(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    n_rows = len(df)
    model_indices, models = pd.factorize(pd.concat([df["model_a"], df["model_b"]]))
    matchups = np.column_stack([model_indices[:n_rows], model_indices[n_rows:]])
    schedule = np.full((n_rows, 3), fill_value=1, dtype=np.int32)
    schedule[:, [0, 1]] = matchups
    schedule[df["winner"] == "model_a", 2] = 2
    schedule[df["winner"] == "model_b", 2] = 0
    matchups_outcomes, weights = np.unique(schedule, return_counts=True, axis=0)
    matchups = matchups_outcomes[:, [0, 1]]
    outcomes = matchups_outcomes[:, 2].astype(np.float64) / 2.0
    return matchups, outcomes, list(models), weights.astype(np.float64)


def arena_loss_and_grad(ratings, matchups, outcomes, weights, alpha=1.0):  # type: ignore[no-untyped-def]
    matchup_ratings = ratings[matchups]
    logits = alpha * (matchup_ratings[:, 0] - matchup_ratings[:, 1])
    probs = expit(logits)
    loss = -((np.log(probs) * outcomes + np.log(1.0 - probs) * (1.0 - outcomes)) * weights).sum()
    matchups_grads = -alpha * (outcomes - probs) * weights
    model_grad = np.zeros_like(ratings)
    np.add.at(
        model_grad,
        matchups[:, [0, 1]],
        matchups_grads[:, None] * np.array([1.0, -1.0], dtype=np.float64),
    )
    return loss, model_grad


def arena_fit_bt(matchups, outcomes, weights, n_models, alpha, tol=1e-6):  # type: ignore[no-untyped-def]
    result = minimize(
        fun=arena_loss_and_grad,
        x0=np.zeros(n_models, dtype=np.float64),
        args=(matchups, outcomes, weights, alpha),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 100, "gtol": tol},
    )
    return result["x"]


def arena_bootstrap(df: pd.DataFrame, num_round: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """Point estimate and bootstrap ratings (scale 400, base 10, init 1000), no anchor."""
    matchups, outcomes, models, weights = arena_preprocess(df)
    alpha = math.log(10.0)
    point = arena_fit_bt(matchups, outcomes, weights, len(models), alpha) * 400 + 1000
    rng = np.random.default_rng(seed=seed)
    idxs = rng.multinomial(n=len(df), pvals=weights / weights.sum(), size=num_round)
    boot_weights = idxs.astype(np.float64) / len(df)
    boot = np.array([arena_fit_bt(matchups, outcomes, w, len(models), alpha) for w in boot_weights])
    return models, point, boot * 400 + 1000


# ---------------------------------------------------------------- ours


def ours_bootstrap(df: pd.DataFrame, num_round: int, models: list[str], seed: int = 0):  # type: ignore[no-untyped-def]
    a = pd.Categorical(df["model_a"], categories=models).codes
    b = pd.Categorical(df["model_b"], categories=models).codes
    winner = df["winner"].to_numpy()
    code = np.where(winner == "model_a", 2, np.where(winner == "model_b", 0, 1))
    cells = cells_from_codes(a, b, code, len(models))
    point = fit_bradley_terry(cells)
    theta, ok = bootstrap_log_strengths(cells, point, draw_cell_counts(cells, num_round, seed))
    assert ok.all(), "bootstrap rounds did not converge"
    return to_elo(point.log_strength), to_elo(theta)


# ---------------------------------------------------------------- data and table


def synthetic_battles(n_votes: int, n_models: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = [f"model-{k:02d}" for k in range(n_models)]
    elo = rng.normal(1000, 120, n_models)
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    p_a = expit((elo[a] - elo[b]) * math.log(10) / 400)
    u = rng.random(n_votes)
    tie = rng.random(n_votes) < 0.2
    winner = np.where(tie, "tie", np.where(u < p_a, "model_a", "model_b"))
    return pd.DataFrame(
        {"model_a": np.array(names)[a], "model_b": np.array(names)[b], "winner": winner}
    )


def _best_of(repeats: int, fn):  # type: ignore[no-untyped-def]
    best, result = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    rounds = 1000
    header = (
        f"{'votes':>9} {'models':>6} {'rounds':>6} {'baseline s':>10} {'ours s':>7} "
        f"{'(draw s)':>8} {'speed-up':>8} {'max|dElo| point':>15} {'max|dElo| bounds':>16}"
    )
    print(header)
    print("-" * len(header))
    for n_votes, n_models in [(100_000, 20), (100_000, 30), (1_000_000, 20), (1_000_000, 30)]:
        df = synthetic_battles(n_votes, n_models)
        t_base, (models, base_point, base_boot) = _best_of(2, lambda: arena_bootstrap(df, rounds))  # noqa: B023
        t_ours, (our_point, our_boot) = _best_of(3, lambda: ours_bootstrap(df, rounds, models))  # noqa: B023
        matchups, _, _, weights = arena_preprocess(df)
        t_draw, _ = _best_of(
            3,
            lambda: np.random.default_rng(0).multinomial(n_votes, weights / weights.sum(), rounds),  # noqa: B023
        )
        q = [0.025, 0.975]
        bounds_diff = np.abs(
            np.quantile(base_boot, q, axis=0) - np.quantile(our_boot, q, axis=0)
        ).max()
        point_diff = np.abs(base_point - our_point).max()
        print(
            f"{n_votes:>9} {n_models:>6} {rounds:>6} {t_base:>10.3f} {t_ours:>7.3f} "
            f"{t_draw:>8.3f} {t_base / t_ours:>7.1f}x {point_diff:>15.5f} {bounds_diff:>16.5f}",
            flush=True,
        )
    print(
        "\nbaseline: FastChat compute_bt + compute_bootstrap_bt (L-BFGS-B per round, in a loop);"
        "\nours: sbs.analysis.stats.bradley_terry (one Newton solve batched over rounds);"
        "\nboth include preprocessing, the same multinomial draw (seed 0; '(draw s)' alone)"
        "\nand the point estimate. Best of 2 (baseline) / 3 (ours) runs, single thread."
    )


if __name__ == "__main__":
    main()
