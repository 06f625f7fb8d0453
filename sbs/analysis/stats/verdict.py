"""Two-model verdict: counts, win rates, Wilson interval, sign test, two-way bootstrap.

Win-rate policy
---------------
``both_bad`` votes say nothing about which model is better; they are counted and
reported on their own (``both_bad`` and ``both_bad_share``) and excluded from
every win-rate denominator. Two win rates are reported:

* ``win_rate_ties_half`` = (W + T/2) / (W + L + T)  (a tie is half a win each);
* ``win_rate_decisive``  = W / (W + L)              (ties dropped).

The Wilson interval and the exact sign test are on the decisive votes (W of W + L);
``wilson_ties_half`` applies the Wilson formula to the fractional count W + T/2 of
W + L + T (an approximation, reported for display). The bootstrap resamples questions
and annotators at once (Owen's pigeonhole / two-way bootstrap) and gives percentile
intervals for both win rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import binom, binomtest
from statsmodels.stats.proportion import proportion_confint

from sbs.analysis.stats._plain import opt_float, plain
from sbs.analysis.stats.frame import first_votes, pair_outcomes

WinRateKind = Literal["ties_half", "decisive"]


def wilson_interval(
    successes: float, n: float, level: float = 0.95
) -> tuple[float | None, float | None]:
    """Wilson score interval: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n).

    Uses statsmodels ``proportion_confint(method="wilson")``; (None, None) when n == 0.
    The exact interval always holds p = successes / n and lies in [0, 1]; the floating-point
    one can miss either by an ulp (10 of 10 gives an upper bound of 0.9999999999999999), so
    the ends are clamped to [0, p] and [p, 1].
    """
    if not n > 0 or not math.isfinite(n) or not math.isfinite(successes):
        return None, None
    low, high = wilson_intervals(np.array([successes]), np.array([n]), level)
    return float(low[0]), float(high[0])


def wilson_intervals(
    successes: npt.ArrayLike, n: npt.ArrayLike, level: float = 0.95
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """:func:`wilson_interval` over arrays; NaN ends where n == 0."""
    k = np.asarray(successes, dtype=float)
    m = np.asarray(n, dtype=float)
    ok = m > 0
    safe = np.where(ok, m, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        low, high = proportion_confint(k, safe, alpha=1.0 - level, method="wilson")
    p = np.clip(k / safe, 0.0, 1.0)
    low = np.clip(np.minimum(np.asarray(low, dtype=float), p), 0.0, 1.0)
    high = np.clip(np.maximum(np.asarray(high, dtype=float), p), 0.0, 1.0)
    return np.where(ok, low, np.nan), np.where(ok, high, np.nan)


def sign_test(wins: int, losses: int) -> float | None:
    """Exact two-sided sign test: binomial test of W successes in W + L at p = 0.5.

    Ties are dropped before calling this. Uses ``scipy.stats.binomtest``; None when W + L == 0.
    """
    n = wins + losses
    if n == 0:
        return None
    return float(binomtest(wins, n, 0.5, alternative="two-sided").pvalue)


def sign_tests(successes: npt.ArrayLike, n: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """:func:`sign_test` over arrays: min(1, 2 · P(X ≤ min(k, n − k))), X ~ Bin(n, 1/2).

    At p = 1/2 the binomial is symmetric, so this equals scipy's two-sided ``binomtest``
    (which sums every outcome no more likely than the observed one). NaN where n == 0.
    """
    k = np.asarray(successes, dtype=float)
    m = np.asarray(n, dtype=float)
    tail = binom.cdf(np.minimum(k, m - k), m, 0.5)
    return np.where(m > 0, np.minimum(1.0, 2.0 * tail), np.nan)


@dataclass(frozen=True)
class BootstrapInterval:
    """Percentile bootstrap interval of one statistic."""

    statistic: str
    low: float | None
    high: float | None
    level: float
    rounds: int
    seed: int
    method: str
    degenerate_rounds: int  # rounds where the denominator was zero (dropped)

    def to_dict(self) -> dict[str, Any]:
        return plain(self)  # type: ignore[no-any-return]


def _codes(values: npt.ArrayLike) -> tuple[npt.NDArray[np.intp], int]:
    codes, uniques = pd.factorize(pd.Series(np.asarray(values, dtype=object)))
    return codes.astype(np.intp), len(uniques)


def _cell_sums(
    rows: npt.NDArray[np.intp],
    cols: npt.NDArray[np.intp],
    values: npt.NDArray[np.float64],
    n_rows: int,
    n_cols: int,
) -> npt.NDArray[np.float64]:
    flat = np.bincount(rows * n_cols + cols, weights=values, minlength=n_rows * n_cols)
    return np.asarray(flat, dtype=np.float64).reshape(n_rows, n_cols)


def two_way_bootstrap_ratio(
    numerator: npt.ArrayLike,
    denominator: npt.ArrayLike,
    questions: npt.ArrayLike,
    annotators: npt.ArrayLike,
    *,
    rounds: int = 2000,
    seed: int = 0,
    chunk: int = 256,
) -> npt.NDArray[np.float64]:
    """Bootstrap replicates of sum(num) / sum(den), resampling questions AND annotators.

    Rounds are drawn in blocks of ``chunk``: for each block, ``rng.integers(0, Q, (k, Q))``
    questions and then ``rng.integers(0, A, (k, A))`` annotators, with
    ``rng = np.random.default_rng(seed)``; a vote in cell (q, a) enters a round with weight
    ``count_r(q) * count_r(a)`` — every vote in the product of the drawn questions and
    drawn annotators (Owen 2007, pigeonhole bootstrap). The ratio per round is
    ``cq_r · N · ca_r / cq_r · D · ca_r`` with N, D the per-cell sums. Rounds with a
    zero denominator are NaN. Passing a distinct id per vote as ``questions`` and one
    constant annotator gives the ordinary iid bootstrap.
    """
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    q_codes, n_q = _codes(questions)
    a_codes, n_a = _codes(annotators)
    if not (len(num) == len(den) == len(q_codes) == len(a_codes)):
        raise ValueError("numerator, denominator, questions and annotators differ in length")
    if len(num) == 0 or rounds <= 0:
        return np.full(max(rounds, 0), np.nan)
    num_cells = _cell_sums(q_codes, a_codes, num, n_q, n_a)
    den_cells = _cell_sums(q_codes, a_codes, den, n_q, n_a)
    rng = np.random.default_rng(seed)
    out = np.empty(rounds)
    for start in range(0, rounds, chunk):
        stop = min(start + chunk, rounds)
        k = stop - start
        q_draws = rng.integers(0, n_q, size=(k, n_q))
        a_draws = rng.integers(0, n_a, size=(k, n_a))
        offsets = np.arange(k)[:, None]
        cq = np.bincount((q_draws + offsets * n_q).ravel(), minlength=k * n_q)
        ca = np.bincount((a_draws + offsets * n_a).ravel(), minlength=k * n_a)
        cq = cq.reshape(k, n_q).astype(float)
        ca = ca.reshape(k, n_a).astype(float)
        top = ((cq @ num_cells) * ca).sum(axis=1)
        bottom = ((cq @ den_cells) * ca).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:stop] = np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1), np.nan)
    return out


def win_rate_parts(
    outcomes: npt.ArrayLike, kind: WinRateKind = "ties_half"
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-vote (numerator, denominator) of a win rate for outcomes a/b/tie/both_bad.

    ties_half: a -> (1, 1), tie -> (0.5, 1), b -> (0, 1), both_bad -> (0, 0).
    decisive:  a -> (1, 1), b -> (0, 1), tie and both_bad -> (0, 0).
    """
    o = np.asarray(outcomes, dtype=object)
    num = (o == "a").astype(float)
    if kind == "ties_half":
        num = num + 0.5 * (o == "tie")
        den = np.isin(o, ["a", "b", "tie"]).astype(float)
    elif kind == "decisive":
        den = np.isin(o, ["a", "b"]).astype(float)
    else:
        raise ValueError(f"unknown win-rate kind {kind!r}")
    return num, den


def percentile_interval(
    replicates: npt.ArrayLike, level: float = 0.95
) -> tuple[float | None, float | None]:
    """(lower, upper) quantiles at (1 ± level)/2 of the finite replicates (linear interpolation)."""
    reps = np.asarray(replicates, dtype=float)
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return None, None
    low, high = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def bootstrap_win_rate(
    outcomes: npt.ArrayLike,
    questions: npt.ArrayLike,
    annotators: npt.ArrayLike,
    *,
    kind: WinRateKind = "ties_half",
    rounds: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapInterval:
    """Two-way (question x annotator) clustered percentile bootstrap interval of a win rate."""
    num, den = win_rate_parts(outcomes, kind)
    reps = two_way_bootstrap_ratio(num, den, questions, annotators, rounds=rounds, seed=seed)
    low, high = percentile_interval(reps, level)
    return BootstrapInterval(
        statistic=f"win_rate_{kind}",
        low=low,
        high=high,
        level=level,
        rounds=rounds,
        seed=seed,
        method="two-way clustered (question x annotator) percentile bootstrap",
        degenerate_rounds=int(np.isnan(reps).sum()),
    )


@dataclass(frozen=True)
class Verdict:
    """Verdict of ``model`` against ``opponent`` (see the module docstring for the policy)."""

    model: str
    opponent: str
    n_votes: int
    n_questions: int
    n_annotators: int
    wins: int
    losses: int
    ties: int
    both_bad: int
    win_share: float | None  # W / all votes
    loss_share: float | None
    tie_share: float | None
    both_bad_share: float | None
    win_rate_ties_half: float | None  # (W + T/2) / (W + L + T)
    win_rate_decisive: float | None  # W / (W + L)
    wilson_decisive: tuple[float | None, float | None]
    wilson_ties_half: tuple[float | None, float | None]
    sign_test_p: float | None
    bootstrap_ties_half: BootstrapInterval | None
    bootstrap_decisive: BootstrapInterval | None
    level: float

    def to_dict(self) -> dict[str, Any]:
        return plain(self)  # type: ignore[no-any-return]


def _share(k: int, n: int) -> float | None:
    return k / n if n else None


def verdict_from_outcomes(
    outcomes: npt.ArrayLike,
    questions: npt.ArrayLike,
    annotators: npt.ArrayLike,
    *,
    model: str = "a",
    opponent: str = "b",
    rounds: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Verdict:
    """Verdict from outcome labels already oriented to ``model`` (a = model won).

    ``rounds=0`` skips the bootstrap.
    """
    o = np.asarray(outcomes, dtype=object)
    wins = int((o == "a").sum())
    losses = int((o == "b").sum())
    ties = int((o == "tie").sum())
    both_bad = int((o == "both_bad").sum())
    n = len(o)
    decisive = wins + losses
    rated = decisive + ties
    boot_half = boot_dec = None
    if rounds > 0 and n > 0:
        boot_half = bootstrap_win_rate(
            o, questions, annotators, kind="ties_half", rounds=rounds, seed=seed, level=level
        )
        boot_dec = bootstrap_win_rate(
            o, questions, annotators, kind="decisive", rounds=rounds, seed=seed, level=level
        )
    return Verdict(
        model=model,
        opponent=opponent,
        n_votes=n,
        n_questions=int(pd.Series(np.asarray(questions, dtype=object)).nunique()),
        n_annotators=int(pd.Series(np.asarray(annotators, dtype=object)).nunique()),
        wins=wins,
        losses=losses,
        ties=ties,
        both_bad=both_bad,
        win_share=_share(wins, n),
        loss_share=_share(losses, n),
        tie_share=_share(ties, n),
        both_bad_share=_share(both_bad, n),
        win_rate_ties_half=opt_float((wins + ties / 2) / rated) if rated else None,
        win_rate_decisive=opt_float(wins / decisive) if decisive else None,
        wilson_decisive=wilson_interval(wins, decisive, level),
        wilson_ties_half=wilson_interval(wins + ties / 2, rated, level),
        sign_test_p=sign_test(wins, losses),
        bootstrap_ties_half=boot_half,
        bootstrap_decisive=boot_dec,
        level=level,
    )


def verdict(
    frame: pd.DataFrame,
    model: str,
    opponent: str,
    *,
    rounds: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    include_repeats: bool = False,
) -> Verdict:
    """Verdict of ``model`` vs ``opponent`` over the votes of that pair in a vote frame.

    Outcomes are derived from ``left``/``choice`` (never screen position); the
    bootstrap is two-way clustered by question and annotator with the given ``seed``.
    Repeat votes (quality-control re-asks) are left out unless ``include_repeats``.
    """
    rows = pair_outcomes(first_votes(frame, include_repeats), model, opponent)
    return verdict_from_outcomes(
        rows["outcome"].to_numpy(dtype=object),
        rows["question"].to_numpy(dtype=object),
        rows["annotator"].to_numpy(dtype=object),
        model=model,
        opponent=opponent,
        rounds=rounds,
        seed=seed,
        level=level,
    )
