"""Bench: batched Bradley-Terry bootstrap vs Chatbot Arena's per-round L-BFGS bootstrap.

Run single-core:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python bench/bench_bradley_terry.py

The baseline re-implements FastChat's ``compute_bt`` / ``compute_bootstrap_bt``
(``fastchat/serve/monitor/rating_systems.py``): votes collapsed into unique
(model_a, model_b, outcome) cells, one multinomial draw of the cell counts per round,
``scipy.optimize.minimize(method="L-BFGS-B")`` on the weighted log-likelihood per round
(run in a loop here instead of a process pool, to stay single-core).

Ours (``sbs.analysis.stats.bradley_terry``), on the same data and rounds, three draws:

- ``cells-multinomial``: ``draw_cell_counts`` — the very draws of the baseline (same seed,
  same cell order), so the bounds are compared draw for draw (solver accuracy only);
- ``multinomial``: ``draw_pair_counts(draw="multinomial")`` — the same law over the
  (pair, outcome) columns the fit sees, fewer binomial draws, another random stream;
- ``poisson``: ``draw_pair_counts(draw="poisson")`` — the Poisson bootstrap, the draw the
  report uses from 10 000 votes on (``draw="auto"``).

The first table times each, with its parts (prep: votes to cells; draw; solve: all rounds
and the point estimate), and compares point estimates and 2.5/97.5 % bounds with the
baseline; for another random stream the bound difference is also given in units of its
Monte-Carlo standard error (z; the SE of a percentile from a normal fit to the rounds).
The second table repeats the bootstraps over many seeds (ours only: the cells-multinomial
draw is the baseline's) to measure what a draw changes in the intervals; the third what
the bootstrap tolerance changes.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.optimize import minimize  # noqa: E402
from scipy.special import expit  # noqa: E402
from scipy.stats import norm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_average, table  # noqa: E402

from sbs.analysis.stats.bradley_terry import (  # noqa: E402
    BOOT_TOL,
    BTFit,
    Cells,
    CountsPer,
    bootstrap_log_strengths,
    cells_from_codes,
    draw_cell_counts,
    draw_pair_counts,
    fit_bradley_terry,
    to_elo,
)

ROUNDS = 1000
SIZES = [(100_000, 20), (100_000, 30), (1_000_000, 20), (1_000_000, 30)]
TRADE_OFF_SIZES = [(100_000, 30), (1_000_000, 30)]
DRAWS = ["cells-multinomial", "multinomial", "poisson"]
Q = [0.025, 0.975]

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
    """Point estimate and bootstrap ratings (scale 400, base 10, init 1000), no anchor;
    also the seconds spent in preprocessing."""
    began = time.perf_counter()
    matchups, outcomes, models, weights = arena_preprocess(df)
    prep = time.perf_counter() - began
    alpha = math.log(10.0)
    point = arena_fit_bt(matchups, outcomes, weights, len(models), alpha) * 400 + 1000
    rng = np.random.default_rng(seed=seed)
    idxs = rng.multinomial(n=len(df), pvals=weights / weights.sum(), size=num_round)
    boot_weights = idxs.astype(np.float64) / len(df)
    boot = np.array([arena_fit_bt(matchups, outcomes, w, len(models), alpha) for w in boot_weights])
    return models, point, boot * 400 + 1000, prep


# ---------------------------------------------------------------- ours


def encode(df: pd.DataFrame, models: list[str]) -> Cells:
    """Votes -> cells, models in the baseline's order (so both draw the same cells)."""
    index = pd.Index(models)
    a = index.get_indexer(df["model_a"])
    b = index.get_indexer(df["model_b"])
    code = pd.Index(["model_b", "tie", "model_a"]).get_indexer(df["winner"])  # 0, 1, 2
    return cells_from_codes(a, b, code, len(models))


def draw_counts(cells: Cells, rounds: int, seed: int, draw: str) -> tuple[np.ndarray, CountsPer]:
    if draw == "cells-multinomial":
        return draw_cell_counts(cells, rounds, seed), "cell"
    return draw_pair_counts(
        cells, rounds, seed, "poisson" if draw == "poisson" else "multinomial"
    ), "pair"


def ours_bootstrap(
    df: pd.DataFrame, rounds: int, models: list[str], draw: str, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Point Elo, bootstrap Elo (R, M) and the seconds of each part."""
    t0 = time.perf_counter()
    cells = encode(df, models)
    t1 = time.perf_counter()
    point = fit_bradley_terry(cells)
    t2 = time.perf_counter()
    counts, per = draw_counts(cells, rounds, seed, draw)
    t3 = time.perf_counter()
    theta, ok = bootstrap_log_strengths(cells, point, counts, per=per)
    t4 = time.perf_counter()
    assert ok.all(), "bootstrap rounds did not converge"
    parts = {"prep": t1 - t0, "draw": t3 - t2, "solve": (t2 - t1) + (t4 - t3), "total": t4 - t0}
    return to_elo(point.log_strength), to_elo(theta), parts


# ---------------------------------------------------------------- data and statistics


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


def bounds(boot: np.ndarray) -> np.ndarray:
    """2.5 % and 97.5 % percentiles per model, shape (2, M)."""
    return np.asarray(np.quantile(boot, Q, axis=0))


def bounds_se(boot: np.ndarray) -> np.ndarray:
    """Monte-Carlo SE of each percentile of one bootstrap, shape (2, M):
    √(q(1 − q)/R) / f(x_q) with the density f of a normal fitted to the rounds, i.e.
    σ̂·√(q(1 − q)/R) / φ(z_q) (the bootstrap laws here are close to normal)."""
    rounds = boot.shape[0]
    sd = boot.std(axis=0, ddof=1)
    factors = [math.sqrt(q * (1 - q) / rounds) / norm.pdf(norm.ppf(q)) for q in Q]
    return np.array([f * sd for f in factors])


def _best_of(repeats: int, fn: Callable[[], Any], key: Callable[[Any], float]) -> Any:
    best, result = math.inf, None
    for _ in range(repeats):
        candidate = fn()
        if key(candidate) < best:
            best, result = key(candidate), candidate
    return result


# ---------------------------------------------------------------- tables


def speed_table(rounds: int) -> None:
    rows: list[list[object]] = []
    for n_votes, n_models in SIZES:
        df = synthetic_battles(n_votes, n_models)

        def arena(df: pd.DataFrame = df) -> tuple[Any, ...]:
            began = time.perf_counter()
            out = arena_bootstrap(df, rounds)
            return (*out, time.perf_counter() - began)

        models, base_point, base_boot, base_prep, base_s = _best_of(2, arena, lambda r: r[-1])
        base_bounds, base_se = bounds(base_boot), bounds_se(base_boot)
        for draw in DRAWS:
            point, boot, parts = _best_of(
                3,
                partial(ours_bootstrap, df, rounds, models, draw),
                lambda r: r[2]["total"],
            )
            ours_bounds = bounds(boot)
            diff = np.abs(ours_bounds - base_bounds)
            if draw == "cells-multinomial":
                z = "same draws"
            else:
                z = f"{(diff / np.hypot(base_se, bounds_se(boot))).max():.2f}"
            boot_speedup = (base_s - base_prep) / (parts["total"] - parts["prep"])
            rows.append(
                [
                    n_votes,
                    n_models,
                    draw,
                    f"{base_s:.3f}",
                    f"{base_prep:.3f}",
                    f"{parts['total']:.3f}",
                    f"{parts['prep']:.3f}",
                    f"{parts['draw']:.3f}",
                    f"{parts['solve']:.3f}",
                    f"{base_s / parts['total']:.1f}x",
                    f"{boot_speedup:.1f}x",
                    f"{np.abs(point - base_point).max():.5f}",
                    f"{diff.max():.5f}",
                    z,
                ]
            )
    table(
        f"Arena vs ours, {rounds} rounds, same data (seconds, best of 2 / 3)",
        [
            "votes",
            "models",
            "our draw",
            "Arena s",
            "(Arena prep)",
            "ours s",
            "(prep)",
            "(draw)",
            "(solve)",
            "speed-up",
            "excl. prep",
            "max|dElo| point",
            "max|dElo| bounds",
            "max z bounds",
        ],
        rows,
    )
    print(
        "\nArena: FastChat compute_bt + compute_bootstrap_bt (L-BFGS-B per round, in a loop),"
        "\nwith its preprocessing (pd.factorize + np.unique over the votes) in 'Arena s'."
        "\nOurs: votes -> cells ('prep'), point estimate + all rounds ('solve'), the draw."
        "\n'excl. prep' = (Arena s - Arena prep) / (ours s - prep). Bounds: 2.5/97.5 %;"
        "\n'max z bounds' = max over bounds of |ours - Arena| / sqrt(SE_ours^2 + SE_Arena^2),"
        "\nabout 2.5-3 expected by chance over 2 x models bounds when the laws agree."
    )


def _fitted(n_votes: int, n_models: int) -> tuple[Cells, BTFit]:
    """Synthetic battles as cells in the Arena's model order, and their point estimate."""
    df = synthetic_battles(n_votes, n_models)
    _, _, models, _ = arena_preprocess(df)
    cells = encode(df, models)
    return cells, fit_bradley_terry(cells)


def trade_off_table(rounds: int, seeds: int) -> None:
    rows: list[list[object]] = []
    for n_votes, n_models in TRADE_OFF_SIZES:
        cells, point = _fitted(n_votes, n_models)
        per_draw: dict[str, np.ndarray] = {}
        for draw in DRAWS:
            found = []
            for seed in range(1000, 1000 + seeds):
                counts, per = draw_counts(cells, rounds, seed, draw)
                theta, _ = bootstrap_log_strengths(cells, point, counts, per=per)
                found.append(bounds(to_elo(theta)))
            per_draw[draw] = np.array(found)  # (seeds, 2, M)
        ref = per_draw["cells-multinomial"]
        ref_width = ref[:, 1] - ref[:, 0]
        for draw in DRAWS[1:]:
            got = per_draw[draw]
            width = got[:, 1] - got[:, 0]
            mean_w, mean_ref = width.mean(axis=1), ref_width.mean(axis=1)  # per seed
            change = mean_w.mean() / mean_ref.mean() - 1
            change_se = math.hypot(mean_w.std(ddof=1), mean_ref.std(ddof=1)) / math.sqrt(seeds)
            shift = got.mean(axis=0) - ref.mean(axis=0)
            shift_se = np.hypot(got.std(axis=0, ddof=1), ref.std(axis=0, ddof=1)) / math.sqrt(seeds)
            rows.append(
                [
                    n_votes,
                    n_models,
                    draw,
                    seeds,
                    f"{mean_ref.mean():.2f}",
                    f"{100 * change:+.2f} ± {100 * change_se / mean_ref.mean():.2f}",
                    f"{np.abs(shift).max():.3f}",
                    f"{(np.abs(shift) / shift_se).max():.2f}",
                    f"{np.median(np.abs(ref[0] - ref[1])):.2f}",
                ]
            )
    table(
        f"What the draw changes in the intervals ({rounds} rounds x seeds; reference: "
        "cells-multinomial, the Arena draw)",
        [
            "votes",
            "models",
            "draw",
            "seeds",
            "mean width (Elo)",
            "width change % ± SE",
            "max|mean bound shift| Elo",
            "max z",
            "seed-to-seed |dBound| (Elo)",
        ],
        rows,
    )
    print(
        "\nPer draw, over the seeds: the 95 % interval width averaged over models vs the"
        "\nreference's, and the largest shift of a mean bound, also in units of its SE"
        "\n(max z about 3 by chance over 2 x models bounds). The last column, the median"
        "\n|difference| of a bound between two seeds of the reference, is the Monte-Carlo"
        "\nnoise of one report. Poisson in theory: a round is a multinomial round of"
        "\nN* ~ Poisson(N) votes (the MLE ignores a common scale), widths change by O(1/N)."
    )


def _timed_solve(
    cells: Cells, point: BTFit, counts: np.ndarray, per: CountsPer, tol: float
) -> tuple[float, np.ndarray]:
    began = time.perf_counter()
    theta, ok = bootstrap_log_strengths(cells, point, counts, tol=tol, per=per)
    assert ok.all()
    return time.perf_counter() - began, to_elo(theta)


def tolerance_table(rounds: int) -> None:
    rows: list[list[object]] = []
    for n_votes, n_models in TRADE_OFF_SIZES:
        cells, point = _fitted(n_votes, n_models)
        counts, per = draw_counts(cells, rounds, 0, "poisson")
        results = {}
        for tol in (1e-10, 1e-7, BOOT_TOL, 1e-5, 1e-4):
            solve = partial(_timed_solve, cells, point, counts, per, tol)
            results[tol] = _best_of(7, solve, lambda r: r[0])
        exact = results[1e-10][1]
        for tol, (seconds, elo) in results.items():
            rows.append(
                [
                    n_votes,
                    n_models,
                    f"{tol:g}" + (" (default)" if tol == BOOT_TOL else ""),
                    f"{tol * 400 / math.log(10):.1e}",
                    f"{seconds:.4f}",
                    f"{np.abs(elo - exact).max():.1e}",
                    f"{np.abs(bounds(elo) - bounds(exact)).max():.1e}",
                ]
            )
    table(
        f"What the bootstrap tolerance changes (poisson draw, {rounds} rounds; solve of the "
        "rounds only, best of 7)",
        [
            "votes",
            "models",
            "tol (nats)",
            "tol (Elo)",
            "solve s",
            "max|dElo| rounds vs 1e-10",
            "max|dElo| bounds vs 1e-10",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--seeds", type=int, default=20, help="seeds per draw in table 2")
    args = parser.parse_args()
    print(f"load average {load_average()} (start); single thread", flush=True)
    speed_table(args.rounds)
    trade_off_table(args.rounds, args.seeds)
    tolerance_table(args.rounds)
    print(f"\nload average {load_average()} (end)", flush=True)


if __name__ == "__main__":
    main()
