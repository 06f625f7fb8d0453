"""Two-model verdict: counts, win rates, Wilson interval, sign test, two-way clustered interval.

Win-rate policy
---------------
``both_bad`` votes say nothing about which model is better; they are counted and
reported on their own (``both_bad`` and ``both_bad_share``) and excluded from
every win-rate denominator. Two win rates are reported:

* ``win_rate_ties_half`` = (W + T/2) / (W + L + T)  (a tie is half a win each);
* ``win_rate_decisive``  = W / (W + L)              (ties dropped).

The Wilson interval and the exact sign test are on the decisive votes (W of W + L);
``wilson_ties_half`` applies the Wilson formula to the fractional count W + T/2 of
W + L + T (an approximation, reported for display).

Clustered interval
------------------
Votes share questions and annotators, so they are not independent. The reported interval
(``cgm_logit``, the default of :func:`bootstrap_win_rate`) uses the two-way cluster-robust
variance of Cameron, Gelbach & Miller (2011) of the ratio r = Σ num / Σ den, from the
influence values z_v = (num_v − r·den_v) / Σ den summed per question (Z_q), per annotator
(Z_a) and per (question, annotator) cell (Z_c):

    V = c_Q·Σ Z_q² + c_A·Σ Z_a² − c_C·Σ Z_c²,   c_G = G / (G − 1),

floored at the larger one-way term (:class:`TwoWayVariance`); the interval is
logit(r) ± t_df · sqrt(V) / (r(1 − r)) mapped back, with Satterthwaite degrees of freedom
(:attr:`TwoWayVariance.df`). It was chosen by simulation (``bench/bench_coverage.py``, 78
questions x 15 annotators): 94.7-95.5 % coverage of a nominal 95 % in every scenario.
Owen's pigeonhole bootstrap (``pigeonhole``: questions and annotators resampled at once,
percentile interval; Owen 2007), printed before, counts the vote-level residual about three
times: it covered 96-99 % and was 13-23 % wider (5 % narrower only when annotators dominate).
``cgm_rescaled`` keeps the pigeonhole percentile shape, rescaled to V and the t quantile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import binom, binomtest, norm
from scipy.stats import t as student_t
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
    """Two-way clustered interval of one statistic (the name stays for stored reports).

    ``interval_method`` is the :data:`IntervalMethod` key, ``method`` its description;
    ``rounds`` and ``seed`` are the bootstrap settings (the analytic ``cgm_logit`` runs no
    bootstrap, so ``degenerate_rounds`` is 0 for it); ``std_error`` and ``df`` are the
    two-way cluster-robust standard error and its degrees of freedom (None for ``pigeonhole``,
    or when there is nothing to estimate).
    """

    statistic: str
    low: float | None
    high: float | None
    level: float
    rounds: int
    seed: int
    method: str
    degenerate_rounds: int  # rounds where the denominator was zero (dropped)
    interval_method: str = "pigeonhole"
    std_error: float | None = None
    df: float | None = None

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


@dataclass(frozen=True)
class TwoWayVariance:
    """Two-way cluster-robust variance of r = Σ num / Σ den (Cameron, Gelbach & Miller 2011).

    With influence values z_v = (num_v - r·den_v) / sum(den) and their sums Z_q per question,
    Z_a per annotator and Z_c per (question, annotator) cell:

        by_question  = c_Q · Σ_q Z_q²      by_annotator = c_A · Σ_a Z_a²
        by_cell      = c_C · Σ_c Z_c²      two_way = by_question + by_annotator − by_cell

    with c_G = G / (G − 1) for G clusters holding a rated vote. ``variance`` =
    max(two_way, by_question, by_annotator, 0): the floor guards a negative two-way estimate
    (CGM 2011) and, like setting a negative variance component to zero, never reports less
    than one factor alone explains. The vote-level residual enters once (by_question and
    by_annotator each hold it, by_cell takes one copy out).
    """

    estimate: float
    variance: float
    two_way: float
    by_question: float
    by_annotator: float
    by_cell: float
    n_questions: int
    n_annotators: int
    n_cells: int

    @property
    def std_error(self) -> float:
        return math.sqrt(self.variance)

    @property
    def df(self) -> float:
        """Degrees of freedom of V for a t quantile.

        Two-way: Satterthwaite's V² / (by_question² / (G_Q − 1) + by_annotator² / (G_A − 1));
        V floored at a one-way term (or equal to it up to rounding, as with one annotator or
        one vote per question and annotator): G − 1 of that factor; inf when V is 0.
        """
        if not self.variance > 0:
            return math.inf
        if self.variance > max(self.by_question, self.by_annotator) * (1 + 1e-9):
            spread = sum(
                v * v / (g - 1)
                for v, g in (
                    (self.by_question, self.n_questions),
                    (self.by_annotator, self.n_annotators),
                )
                if g > 1
            )
            return max(1.0, self.variance**2 / spread) if spread > 0 else math.inf
        if self.by_question >= self.by_annotator:
            return float(self.n_questions - 1)
        return float(self.n_annotators - 1)


def _cluster_term(
    codes: npt.NDArray[np.intp], n: int, z: npt.NDArray[np.float64], rated: npt.NDArray[np.bool_]
) -> tuple[float, int]:
    """(G / (G − 1) · Σ_g Z_g², G) over the G clusters that hold a rated vote."""
    sums = np.bincount(codes, weights=z, minlength=n)
    g = int(np.count_nonzero(np.bincount(codes[rated], minlength=n)))
    if g < 2:
        return 0.0, g
    return g / (g - 1) * float(np.dot(sums, sums)), g


def two_way_variance(
    numerator: npt.ArrayLike,
    denominator: npt.ArrayLike,
    questions: npt.ArrayLike,
    annotators: npt.ArrayLike,
) -> TwoWayVariance | None:
    """:class:`TwoWayVariance` of sum(num) / sum(den); None when sum(den) is not positive.

    One annotator gives the one-way (by question) cluster variance; a distinct question and
    annotator per vote gives the iid variance n / (n − 1) · Σ z_v².
    """
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    q_codes, n_q = _codes(questions)
    a_codes, n_a = _codes(annotators)
    if not (len(num) == len(den) == len(q_codes) == len(a_codes)):
        raise ValueError("numerator, denominator, questions and annotators differ in length")
    total = float(den.sum())
    if not total > 0 or not math.isfinite(total):
        return None
    estimate = float(num.sum()) / total
    z = (num - estimate * den) / total
    rated = den != 0
    by_q, g_q = _cluster_term(q_codes, n_q, z, rated)
    by_a, g_a = _cluster_term(a_codes, n_a, z, rated)
    by_c, g_c = _cluster_term(q_codes * n_a + a_codes, n_q * n_a, z, rated)
    two_way = by_q + by_a - by_c
    return TwoWayVariance(
        estimate=estimate,
        variance=max(two_way, by_q, by_a, 0.0),
        two_way=two_way,
        by_question=by_q,
        by_annotator=by_a,
        by_cell=by_c,
        n_questions=g_q,
        n_annotators=g_a,
        n_cells=g_c,
    )


def rescaled_percentile_interval(
    replicates: npt.ArrayLike,
    estimate: float,
    variance: float,
    level: float = 0.95,
    df: float = math.inf,
) -> tuple[float | None, float | None]:
    """Percentile interval pulled to a target variance: r + s·(q − r).

    s = sqrt(V / var(reps)) · t_{df} / z (the t / z factor widens for a variance estimated
    from few clusters), q the (1 ± level)/2 quantiles of the finite replicates, var(reps)
    their variance (ddof=1): the bootstrap keeps the shape, V and df set the width.
    (None, None) with fewer than two finite replicates; [r, r] when V is 0.
    """
    reps = np.asarray(replicates, dtype=float)
    reps = reps[np.isfinite(reps)]
    if reps.size < 2 or not math.isfinite(variance) or variance < 0:
        return None, None
    if variance == 0:
        return estimate, estimate
    boot_var = float(reps.var(ddof=1))
    if not boot_var > 0:
        return wald_interval(estimate, variance, level, df)
    low, high = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    scale = math.sqrt(variance / boot_var) * critical_value(level, df) / critical_value(level)
    return estimate + scale * (float(low) - estimate), estimate + scale * (float(high) - estimate)


def critical_value(level: float = 0.95, df: float = math.inf) -> float:
    """The (1 + level)/2 quantile of Student's t with ``df`` degrees of freedom (normal at inf)."""
    p = (1 + level) / 2
    return float(norm.ppf(p) if math.isinf(df) else student_t.ppf(p, df))


def wald_interval(
    estimate: float, variance: float, level: float = 0.95, df: float = math.inf
) -> tuple[float | None, float | None]:
    """r ± t_{df, (1+level)/2} · sqrt(V); (None, None) when V is not finite or negative."""
    if not math.isfinite(variance) or variance < 0 or not math.isfinite(estimate):
        return None, None
    half = critical_value(level, df) * math.sqrt(variance)
    return estimate - half, estimate + half


def logit_wald_interval(
    estimate: float, variance: float, level: float = 0.95, df: float = math.inf
) -> tuple[float | None, float | None]:
    """expit(logit(r) ± t_{df, (1+level)/2} · sqrt(V) / (r(1 − r))): delta method on the logit.

    For a rate in [0, 1]. [r, r] when V is 0; at r = 0 or 1 with V > 0 (no logit) the plain
    Wald interval clipped to [0, 1]; (None, None) when V is not finite or negative.
    """
    if not math.isfinite(variance) or variance < 0 or not math.isfinite(estimate):
        return None, None
    if variance == 0:
        return estimate, estimate
    if not 0 < estimate < 1:
        low, high = wald_interval(estimate, variance, level, df)
        return max(0.0, low or 0.0), min(1.0, high if high is not None else 1.0)
    centre = math.log(estimate / (1 - estimate))
    half = critical_value(level, df) * math.sqrt(variance) / (estimate * (1 - estimate))
    return 1 / (1 + math.exp(-(centre - half))), 1 / (1 + math.exp(-(centre + half)))


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


IntervalMethod = Literal["cgm_logit", "pigeonhole", "cgm_rescaled"]
DEFAULT_INTERVAL: IntervalMethod = "cgm_logit"
INTERVAL_METHODS: dict[str, str] = {
    "cgm_logit": "two-way cluster-robust (question x annotator; Cameron-Gelbach-Miller) "
    "variance, Wald interval on the logit scale, Student t with Satterthwaite df",
    "pigeonhole": "two-way clustered (question x annotator) percentile bootstrap",
    "cgm_rescaled": "two-way clustered (question x annotator) percentile bootstrap rescaled "
    "to the Cameron-Gelbach-Miller variance, Student t with Satterthwaite df",
}


def bootstrap_win_rate(
    outcomes: npt.ArrayLike,
    questions: npt.ArrayLike,
    annotators: npt.ArrayLike,
    *,
    kind: WinRateKind = "ties_half",
    rounds: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    method: IntervalMethod = DEFAULT_INTERVAL,
) -> BootstrapInterval:
    """Two-way (question x annotator) clustered interval of a win rate.

    ``cgm_logit`` (default): :func:`logit_wald_interval` with the :class:`TwoWayVariance`
    V and its df, no resampling. ``pigeonhole``: percentile interval of
    :func:`two_way_bootstrap_ratio`. ``cgm_rescaled``: :func:`rescaled_percentile_interval`
    of those replicates to V and df. Ends are None when no vote is rated.
    """
    if method not in INTERVAL_METHODS:
        raise ValueError(f"unknown interval method {method!r}")
    num, den = win_rate_parts(outcomes, kind)
    var = two_way_variance(num, den, questions, annotators)
    std_error = df = None
    if var is not None and method != "pigeonhole":
        std_error, df = var.std_error, var.df
    degenerate = 0
    if method == "cgm_logit":
        low, high = (
            (None, None)
            if var is None
            else logit_wald_interval(var.estimate, var.variance, level, var.df)
        )
    else:
        reps = two_way_bootstrap_ratio(num, den, questions, annotators, rounds=rounds, seed=seed)
        degenerate = int(np.isnan(reps).sum())
        if method == "pigeonhole":
            low, high = percentile_interval(reps, level)
        elif var is None:
            low, high = None, None
        else:
            low, high = rescaled_percentile_interval(
                reps, var.estimate, var.variance, level, var.df
            )
            low, high = _clip01(low), _clip01(high)
    return BootstrapInterval(
        statistic=f"win_rate_{kind}",
        low=low,
        high=high,
        level=level,
        rounds=rounds,
        seed=seed,
        method=INTERVAL_METHODS[method],
        degenerate_rounds=degenerate,
        interval_method=method,
        std_error=std_error,
        df=df,
    )


def _clip01(x: float | None) -> float | None:
    return None if x is None else min(1.0, max(0.0, x))


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
    method: IntervalMethod = DEFAULT_INTERVAL,
) -> Verdict:
    """Verdict from outcome labels already oriented to ``model`` (a = model won).

    ``method`` picks the clustered intervals (:func:`bootstrap_win_rate`); ``rounds=0``
    skips the bootstrap ones (the preliminary report), while the analytic ``cgm_logit``,
    which resamples nothing, is computed whatever ``rounds`` says.
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
    if n > 0 and (rounds > 0 or method == "cgm_logit"):
        boot_half = bootstrap_win_rate(
            o,
            questions,
            annotators,
            kind="ties_half",
            rounds=rounds,
            seed=seed,
            level=level,
            method=method,
        )
        boot_dec = bootstrap_win_rate(
            o,
            questions,
            annotators,
            kind="decisive",
            rounds=rounds,
            seed=seed,
            level=level,
            method=method,
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
    method: IntervalMethod = DEFAULT_INTERVAL,
) -> Verdict:
    """Verdict of ``model`` vs ``opponent`` over the votes of that pair in a vote frame.

    Outcomes are derived from ``left``/``choice`` (never screen position); the
    intervals are two-way clustered by question and annotator (``method``; a bootstrap
    one uses ``rounds`` and ``seed``). Repeat votes (quality-control re-asks) are left out
    unless ``include_repeats``.
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
        method=method,
    )
