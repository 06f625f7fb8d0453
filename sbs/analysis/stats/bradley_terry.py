"""Bradley-Terry ratings for two or more models, with a fast batched bootstrap.

Model (ties as half a win, the default): P(i beats j) = σ(θ_i − θ_j), σ the logistic
function, θ natural-log strengths; a tie counts half a win for each side, so a pair
with W wins of i, L wins of j and T ties contributes
``(W + T/2)·log σ(d) + (L + T/2)·log σ(−d)`` with d = θ_i − θ_j.

Davidson (1970) ties (``ties="davidson"``): with π = e^θ,
P(i) = π_i / (π_i + π_j + ν√(π_iπ_j)), P(tie) = ν√(π_iπ_j) / (same); ν fitted by MLE.

Estimation is maximum likelihood on the aggregated counts, by damped Newton with the
gauge Σθ = 0 (mean Elo = ``init``). Elo = init + scale · θ / ln(base), with
scale 400, base 10, init 1000 — the Chatbot Arena convention.

Bootstrap (the iid vote bootstrap, as in Chatbot Arena; percentile intervals): the
likelihood sees the votes only through the counts c of the 3P (pair, outcome) columns
(lo beat hi, hi beat lo, tie; :func:`pair_counts`), so each round draws those counts
(:func:`draw_pair_counts`) and all rounds are solved at once. The draw (``draw``):

- ``multinomial``: Multinomial(N, c/N) over the columns, exactly the law of resampling the
  N votes with replacement. (Chatbot Arena draws the finer (model_a, model_b, outcome)
  cells: the same law per column, twice the binomial draws; :func:`draw_cell_counts`
  gives its very draws.)
- ``poisson``: independent Poisson(c_k) per column, the Poisson bootstrap, 2-2.6x
  cheaper. Poisson counts given their total N* ~ Poisson(N) are Multinomial(N*, c/N), and
  the MLE does not change when all counts are scaled, so a Poisson round is a multinomial
  round of N* votes instead of N: bootstrap spreads grow by E[N/N*]^½ − 1 ≈ 1/(2N),
  nothing at scale (bench, 30 models, 20 seeds x 1000 rounds against the Arena draw:
  widths −0.2 ± 0.2 % at 10^5 votes, +0.2 ± 0.2 % at 10^6, as for the exact multinomial
  on other random streams), but for a handful of votes a round can be empty
  (probability e^−N) or much smaller. With ``l2 > 0`` the ridge weighs
  ±1/√N more or less from round to round.
- ``auto`` (:func:`bradley_terry`'s default, so the report's draw): ``poisson`` from
  :data:`POISSON_MIN_VOTES` = 10 000 votes on (width change ~1e-4 or less),
  ``multinomial`` below, where O(1/N) starts to show and the draw costs little anyway
  (the report rates two models: 3 columns).

Every round starts at the point estimate and runs the chord iteration
x ← x + (N/N_r)·H₀⁻¹∇ℓ_r(x), H₀ the negative Hessian at the point estimate (one inverse
for all rounds: no per-round Hessian or linear solve); it contracts the error by about
1/√(votes per pair) per step. A round stops after a step below ``tol`` =
:data:`BOOT_TOL` = 1e-6 nats (1.7e-4 Elo), which leaves an error below ``tol`` (measured:
below 1e-5 Elo at 10^5 votes and 30 models, 4-6 steps). Rounds where a step does not
halve the previous one (sparse data, no MLE) are solved by damped Newton instead.

``both_bad`` votes are excluded by default (``both_bad="tie"`` counts them as ties).
If the "i beat j" graph (a tie counts both ways) is not strongly connected — e.g. a
model never lost — the MLE does not exist (Ford 1957): the fit is then reported with
``converged=False`` and its ratings are not meaningful; use ``l2 > 0`` for a
ridge-penalised fit. Bootstrap rounds without an MLE are counted in
``rounds_not_converged`` and kept in the percentiles (they widen the interval, as they
do in Chatbot Arena's bootstrap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from sbs.analysis.stats._plain import opt_float, plain
from sbs.analysis.stats.frame import derive_outcomes, first_votes, models_in

TieModel = Literal["half", "davidson"]
BothBadPolicy = Literal["exclude", "tie"]
Draw = Literal["multinomial", "poisson"]
DrawChoice = Literal["auto", "multinomial", "poisson"]
CountsPer = Literal["cell", "pair"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

ELO_SCALE = 400.0
ELO_BASE = 10.0
ELO_INIT = 1000.0
# Outcome codes of a cell, as in Chatbot Arena: 2 = model_a won, 1 = tie, 0 = model_b won.
A_WINS, TIE, B_WINS = 2, 1, 0
_BLOCK = 64  # rounds per damped-Newton solve
_CHORD_BLOCK = 256  # rounds per chord solve (the (rounds x pairs) temporaries stay cache-sized)
_CHORD_MAX_ITER = 12
# A bootstrap round stops after a step below this (max-norm, nats), which leaves an error
# below it: 1e-6 nats = 1.7e-4 Elo, far below the Monte-Carlo error of a percentile.
BOOT_TOL = 1e-6
# draw="auto": the Poisson draw from this many votes on (it widens intervals by O(1/N)).
POISSON_MIN_VOTES = 10_000


@dataclass(frozen=True)
class Cells:
    """Unique (i, j, outcome) cells, sorted lexicographically, with their vote counts."""

    i: IntArray
    j: IntArray
    outcome: IntArray
    count: FloatArray
    n_models: int

    @property
    def n_votes(self) -> int:
        return int(self.count.sum())


def cells_from_codes(
    a_idx: npt.ArrayLike, b_idx: npt.ArrayLike, outcome: npt.ArrayLike, n_models: int
) -> Cells:
    """Collapse per-vote (model_a index, model_b index, outcome code) into counted cells.

    Same cells in the same order as ``np.unique(rows, axis=0, return_counts=True)``.
    """
    a = np.asarray(a_idx, dtype=np.intp)
    b = np.asarray(b_idx, dtype=np.intp)
    o = np.asarray(outcome, dtype=np.intp)
    if np.any(a == b):
        raise ValueError("a model cannot play itself")
    key = (a * n_models + b) * 3 + o
    counts = np.bincount(key, minlength=n_models * n_models * 3)
    keys = np.flatnonzero(counts)
    return Cells(
        i=(keys // 3) // n_models,
        j=(keys // 3) % n_models,
        outcome=keys % 3,
        count=counts[keys].astype(np.float64),
        n_models=n_models,
    )


def vote_cells(
    frame: pd.DataFrame,
    models: list[str] | None = None,
    both_bad: BothBadPolicy = "exclude",
) -> tuple[list[str], Cells]:
    """Cells of a vote frame; models sorted by name unless ``models`` gives the order."""
    names = list(models) if models is not None else models_in(frame)
    outcome = derive_outcomes(frame).to_numpy(dtype=object)
    keep = outcome != "both_bad" if both_bad == "exclude" else np.ones(len(outcome), bool)
    a = pd.Categorical(frame["model_a"], categories=names).codes[keep]
    b = pd.Categorical(frame["model_b"], categories=names).codes[keep]
    if (a < 0).any() or (b < 0).any():
        raise ValueError("frame has models missing from `models`")
    o = outcome[keep]
    code = np.where(o == "a", A_WINS, np.where(o == "b", B_WINS, TIE))
    return names, cells_from_codes(a.astype(np.intp), b.astype(np.intp), code, len(names))


@dataclass(frozen=True)
class _PairMap:
    lo: IntArray  # pair p is (lo[p], hi[p]) with lo < hi
    hi: IntArray
    matrix: sparse.csr_matrix  # (cells, 3P): columns [lo wins | hi wins | ties]


def _pair_map(cells: Cells) -> _PairMap:
    lo = np.minimum(cells.i, cells.j)
    hi = np.maximum(cells.i, cells.j)
    pair_keys, pair_of_cell = np.unique(lo * cells.n_models + hi, return_inverse=True)
    n_pairs = len(pair_keys)
    i_is_lo = cells.i == lo
    lo_wins = ((cells.outcome == A_WINS) & i_is_lo) | ((cells.outcome == B_WINS) & ~i_is_lo)
    col = np.where(cells.outcome == TIE, 2, np.where(lo_wins, 0, 1)) * n_pairs + pair_of_cell
    ones = np.ones(len(col))
    matrix = sparse.csr_matrix((ones, (np.arange(len(col)), col)), shape=(len(col), 3 * n_pairs))
    return _PairMap(
        lo=(pair_keys // cells.n_models).astype(np.intp),
        hi=(pair_keys % cells.n_models).astype(np.intp),
        matrix=matrix,
    )


def _pair_counts(pm: _PairMap, weights: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per round (rows of ``weights``, shape (R, cells)): lo wins, hi wins, ties per pair."""
    agg = np.asarray((pm.matrix.T @ weights.T).T)  # sparse.T @ dense: O(R · cells)
    n_pairs = len(pm.lo)
    return agg[:, :n_pairs], agg[:, n_pairs : 2 * n_pairs], agg[:, 2 * n_pairs :]


class _Problem:
    """Log-likelihood, gradient and negative Hessian per round, on per-pair counts."""

    def __init__(
        self,
        lo: IntArray,
        hi: IntArray,
        n_models: int,
        w: FloatArray,
        lo_loss: FloatArray,
        t: FloatArray,
        ties: TieModel,
        l2: float,
    ) -> None:
        self.lo, self.hi, self.m = lo, hi, n_models
        self.t = t
        self.ties, self.l2 = ties, l2
        n_pairs = len(lo)
        signed = np.zeros((n_pairs, n_models))
        signed[np.arange(n_pairs), lo] = 1.0
        signed[np.arange(n_pairs), hi] = -1.0
        self.signed = signed
        self.absolute = np.abs(signed)
        self.k = n_models + (1 if ties == "davidson" else 0)
        self.n = w + lo_loss + t
        self.s = w + 0.5 * t  # ties-half score of the lo model
        self.margin = w - lo_loss
        # Davidson: rounds without any tie keep ν = 0 (λ fixed), see evaluate.
        self.no_ties = t.sum(axis=1) == 0

    def gradient(self, x: FloatArray) -> FloatArray:
        """∇ℓ at ``x`` for every row; ties half: ∇ℓ = Sᵀ(s − n·σ(Sθ)) − l2·θ, S the signed
        (pairs x models) incidence matrix. Davidson: the gradient of :meth:`evaluate`."""
        if self.ties != "half":
            return self.evaluate(x, None)[1]
        theta = x[:, : self.m]
        # σ(d) = 1 / (1 + e^{−d}), in place (np.exp is vectorised, scipy's expit is not);
        # e^{−d} = inf for d < −709 gives σ = 0, as it should.
        e = np.negative(theta @ self.signed.T)
        with np.errstate(over="ignore"):
            np.exp(e, out=e)
        e += 1.0
        np.reciprocal(e, out=e)
        e *= self.n
        np.subtract(self.s, e, out=e)
        grad: FloatArray = e @ self.signed
        if self.l2 > 0:
            grad -= self.l2 * theta
        return grad

    def evaluate(
        self, x: FloatArray, rows: IntArray | None
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(log-likelihood, gradient, negative Hessian + gauge) at ``x`` for ``rows`` (None: all)."""
        m = self.m
        theta = x[:, :m]
        d = theta @ self.signed.T  # d[r, p] = θ_lo − θ_hi
        sel = slice(None) if rows is None else rows
        n = self.n[sel]
        grad = np.zeros_like(x)
        hess = np.zeros((x.shape[0], self.k, self.k))
        abs_d = np.abs(d)
        if self.ties == "half":
            s = self.s[sel]
            # With e = exp(−|d|), q = 1/(1 + e): σ(d) = q if d ≥ 0 else 1 − q,
            # σ(d)σ(−d) = q(1 − q), and log(1 + e^d) = max(d, 0) + log1p(e).
            e = np.exp(-abs_d)
            q = 1.0 / (1.0 + e)
            softplus = np.log1p(e)
            softplus += np.maximum(d, 0.0)
            # s·log σ(d) + (n − s)·log σ(−d) = s·d − n·log(1 + e^d)
            ll = (s * d - n * softplus).sum(axis=1)
            g_pair = s - n * np.where(d >= 0.0, q, 1.0 - q)
            h_pair = n * q * (1.0 - q)
        else:
            t = self.t[sel]
            fixed = self.no_ties[sel]
            lam = np.where(fixed, -60.0, x[:, m])[:, None]
            # log D = log(e^{d/2} + e^{−d/2} + ν) = |d|/2 + log(1 + e^{−|d|} + ν·e^{−|d|/2})
            half = np.exp(-abs_d / 2)
            log_d = abs_d / 2 + np.log1p(half * half + np.exp(lam) * half)
            margin = self.margin[sel]
            ll = (margin * d / 2 + t * lam - n * log_d).sum(axis=1)
            e_p = np.exp(d / 2 - log_d)  # P(lo wins)
            e_m = np.exp(-d / 2 - log_d)  # P(hi wins)
            e_t = np.exp(lam - log_d)  # P(tie)
            g_pair = margin / 2 - n * (e_p - e_m) / 2
            h_pair = n * (e_p * e_m + e_t * (e_p + e_m) / 4)
            g_lam = (t - n * e_t).sum(axis=1)
            h_cross = -n * e_t * (e_p - e_m) / 2
            h_lam = (n * e_t * (e_p + e_m)).sum(axis=1)
            grad[:, m] = np.where(fixed, 0.0, g_lam)
            hess[:, m, m] = np.where(fixed, 1.0, h_lam)
            cross = h_cross @ self.signed
            cross[fixed] = 0.0
            hess[:, :m, m] = cross
            hess[:, m, :m] = cross
        grad[:, :m] = g_pair @ self.signed
        hess[:, self.lo, self.hi] = -h_pair
        hess[:, self.hi, self.lo] = -h_pair
        diag = h_pair @ self.absolute
        idx = np.arange(m)
        hess[:, idx, idx] = diag
        if self.l2 > 0:
            ll = ll - 0.5 * self.l2 * (theta**2).sum(axis=1)
            grad[:, :m] -= self.l2 * theta
            hess[:, idx, idx] += self.l2
        # Gauge Σθ = 0: adding c·11ᵀ to the θ block leaves the fixed point unchanged and
        # makes the Laplacian invertible; a tiny ridge guards models without games.
        scale = np.maximum(diag.mean(axis=1), 1e-12)
        hess[:, :m, :m] += (scale / m)[:, None, None]
        hess[:, idx, idx] += 1e-10 * scale[:, None]
        return ll, grad, hess


def _newton(
    problem: _Problem, x0: FloatArray, tol: float, max_iter: int
) -> tuple[FloatArray, npt.NDArray[np.bool_], int]:
    """Damped Newton vectorised over rounds.

    A round stops once its Newton step is below ``tol`` (max-norm, natural-log units; the
    step is still applied). Larger steps are halved until the round's log-likelihood does
    not decrease, so every round ascends monotonically.
    """
    x = x0.copy()
    rounds = x.shape[0]
    ll, grad, hess = problem.evaluate(x, None)
    done = np.zeros(rounds, dtype=bool)
    iterations = 0
    while iterations < max_iter:
        active = np.flatnonzero(~done)
        if active.size == 0:
            break
        iterations += 1
        step = np.linalg.solve(hess[active], grad[active][..., None])[..., 0]
        small = np.abs(step).max(axis=1) < tol
        x[active[small]] += step[small]
        done[active[small]] = True
        pending, step = active[~small], step[~small]
        factor = 1.0
        for _ in range(40):
            if pending.size == 0:
                break
            trial = x[pending] + factor * step
            t_ll, t_grad, t_hess = problem.evaluate(trial, pending)
            ok = t_ll >= ll[pending] - 1e-12 * np.abs(ll[pending])
            accepted = pending[ok]
            x[accepted] = trial[ok]
            ll[accepted], grad[accepted], hess[accepted] = t_ll[ok], t_grad[ok], t_hess[ok]
            pending, step, factor = pending[~ok], step[~ok], factor / 2
        done[pending] = True  # no ascent along the Newton direction: optimal up to rounding
    return x, done, iterations


def _chord(
    problem: _Problem, x0: FloatArray, h_inv: FloatArray, scale: FloatArray, tol: float
) -> tuple[FloatArray, BoolArray]:
    """Chord iteration vectorised over rounds: x ← x + Δ, Δ = c_r·H₀⁻¹∇ℓ_r(x).

    H₀ is the negative Hessian at the point estimate (one inverse for all rounds) and
    c_r = N / N_r (a round's Hessian scales with its vote count). The iteration contracts
    the error linearly, by ρ_k = |Δ_k| / |Δ_{k−1}| per step (max-norms); a round stops
    after a step |Δ| < ``tol``, leaving an error of about ρ/(1 − ρ)·|Δ| < ``tol``
    (measured: below 0.1·tol for 30 models and 10^5 votes or more, below 0.75·tol on
    sparse data). A round whose step is not finite or shrinks by less than half (ρ ≥ 1/2),
    or is not done in ``_CHORD_MAX_ITER`` steps, is returned as not done and unchanged.
    """
    x = x0.copy()
    rounds = x.shape[0]
    live = np.ones(rounds, dtype=bool)
    done = np.zeros(rounds, dtype=bool)
    previous = np.full(rounds, np.inf)
    for _ in range(_CHORD_MAX_ITER):
        if not live.any():
            break
        step = problem.gradient(x) @ h_inv
        step *= scale[:, None]
        size = np.abs(step).max(axis=1)
        with np.errstate(invalid="ignore"):
            good = live & np.isfinite(size) & (size < 0.5 * previous)
        x[good] += step[good]
        stop = good & (size < tol)
        done |= stop
        live &= good & ~stop
        previous = size
    failed = ~done
    x[failed] = x0[failed]
    return x, done


def _bootstrap_solve(
    pm: _PairMap,
    n_models: int,
    counts: tuple[FloatArray, FloatArray, FloatArray],
    data: tuple[FloatArray, FloatArray, FloatArray],
    x_point: FloatArray,
    ties: TieModel,
    l2: float,
    tol: float,
    max_iter: int,
) -> tuple[FloatArray, BoolArray]:
    """Bootstrap rounds (per-pair ``counts``, rows = rounds) from the point estimate
    ``x_point`` of the ``data`` counts: chord iteration, damped Newton for rounds it
    leaves."""
    w, lo_loss, t = counts
    rounds = w.shape[0]
    x0 = np.tile(x_point, (rounds, 1))
    at_point = _Problem(
        pm.lo, pm.hi, n_models, data[0][None], data[1][None], data[2][None], ties, l2
    )
    h_point = at_point.evaluate(x_point[None], None)[2][0]
    try:
        h_inv: FloatArray | None = np.linalg.inv(h_point)
    except np.linalg.LinAlgError:
        h_inv = None
    if h_inv is not None and not np.isfinite(h_inv).all():
        h_inv = None
    n_data = float(sum(c.sum() for c in data))
    x = x0.copy()
    converged = np.zeros(rounds, dtype=bool)
    for start in range(0, rounds, _CHORD_BLOCK):
        block = slice(start, min(start + _CHORD_BLOCK, rounds))
        if h_inv is not None:
            problem = _Problem(pm.lo, pm.hi, n_models, w[block], lo_loss[block], t[block], ties, l2)
            n_round = problem.n.sum(axis=1)
            scale = np.where(n_round > 0, n_data / np.maximum(n_round, 1e-300), 1.0)
            x[block], converged[block] = _chord(problem, x0[block], h_inv, scale, tol)
        rest = np.flatnonzero(~converged[block]) + start
        for sub in range(0, len(rest), _BLOCK):
            rows = rest[sub : sub + _BLOCK]
            problem = _Problem(pm.lo, pm.hi, n_models, w[rows], lo_loss[rows], t[rows], ties, l2)
            x[rows], converged[rows], _ = _newton(problem, x0[rows], tol, max_iter)
    return x, converged


def _mle_exists(
    pm: _PairMap, n_models: int, w: FloatArray, lo_loss: FloatArray, t: FloatArray
) -> npt.NDArray[np.bool_]:
    """Per round: does the MLE exist? (Ford 1957: the "i beat j" graph is strongly connected.)

    A tie counts as an edge both ways. Fast path: every pair that met in the data has
    both directions in the round and the pairs connect all models; the remaining rounds
    are checked with ``scipy.sparse.csgraph.connected_components(connection="strong")``.
    """
    rounds = w.shape[0]
    if n_models < 2:
        return np.ones(rounds, dtype=bool)
    support = sparse.coo_matrix(
        (np.ones(len(pm.lo)), (pm.lo, pm.hi)), shape=(n_models, n_models)
    ).tocsr()
    n_parts, _ = connected_components(support, directed=False)
    ok: npt.NDArray[np.bool_] = np.zeros(rounds, dtype=bool)
    if n_parts == 1:  # both directions on every pair: a tie, or a win each way
        ok = np.asarray(((t > 0) | (np.minimum(w, lo_loss) > 0)).all(axis=1), dtype=bool)
    for r in np.flatnonzero(~ok):
        forward = (w[r] > 0) | (t[r] > 0)  # lo -> hi
        backward = (lo_loss[r] > 0) | (t[r] > 0)  # hi -> lo
        rows = np.concatenate([pm.lo[forward], pm.hi[backward]])
        cols = np.concatenate([pm.hi[forward], pm.lo[backward]])
        graph = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_models, n_models))
        ok[r] = connected_components(graph.tocsr(), directed=True, connection="strong")[0] == 1
    return ok


def _finish(
    pm: _PairMap,
    n_models: int,
    x: FloatArray,
    converged: BoolArray,
    counts: tuple[FloatArray, FloatArray, FloatArray],
    ties: TieModel,
    l2: float,
) -> tuple[FloatArray, FloatArray | None, BoolArray]:
    """θ centred to mean 0, ν (Davidson; 0 for rounds without ties), and convergence
    flags that also require the MLE to exist (without ridge)."""
    w, lo_loss, t = counts
    if l2 <= 0:
        converged = converged & _mle_exists(pm, n_models, w, lo_loss, t)
    theta = x[:, :n_models]
    theta = theta - theta.mean(axis=1, keepdims=True)
    nu = None
    if ties == "davidson":
        nu = np.where(t.sum(axis=1) == 0, 0.0, np.exp(x[:, -1]))
    return theta, nu, converged


def _solve(
    cells: Cells,
    weights: FloatArray,
    ties: TieModel,
    l2: float,
    tol: float,
    max_iter: int,
) -> tuple[FloatArray, FloatArray | None, BoolArray, int]:
    """Damped Newton from θ = 0 for each row of cell ``weights``."""
    pm = _pair_map(cells)
    w, lo_loss, t = _pair_counts(pm, weights)
    rounds = weights.shape[0]
    k = cells.n_models + (1 if ties == "davidson" else 0)
    x0 = np.zeros((rounds, k))
    if ties == "davidson":
        n = w.sum(axis=1) + lo_loss.sum(axis=1) + t.sum(axis=1)
        tie_frac = np.clip(t.sum(axis=1) / np.maximum(n, 1), 1e-6, 1 - 1e-6)
        x0[:, -1] = np.log(2 * tie_frac / (1 - tie_frac))  # P(tie | d = 0) = ν / (2 + ν)
    x = np.empty((rounds, k))
    converged = np.empty(rounds, dtype=bool)
    iterations = 0
    # Blocks of rounds keep the (rounds x pairs) temporaries cache-sized.
    for start in range(0, rounds, _BLOCK):
        block = slice(start, min(start + _BLOCK, rounds))
        problem = _Problem(
            pm.lo, pm.hi, cells.n_models, w[block], lo_loss[block], t[block], ties, l2
        )
        x[block], converged[block], its = _newton(problem, x0[block], tol, max_iter)
        iterations = max(iterations, its)
    theta, nu, converged = _finish(pm, cells.n_models, x, converged, (w, lo_loss, t), ties, l2)
    return theta, nu, converged, iterations


@dataclass(frozen=True)
class BTFit:
    """Point estimate: natural-log strengths θ (mean 0) and, for Davidson, the tie parameter ν."""

    log_strength: FloatArray
    nu: float | None
    converged: bool
    iterations: int


def fit_bradley_terry(
    cells: Cells,
    ties: TieModel = "half",
    *,
    l2: float = 0.0,
    tol: float = 1e-7,
    max_iter: int = 100,
) -> BTFit:
    """Maximum-likelihood Bradley-Terry (ties half, or Davidson) on the aggregated cells."""
    theta, nu, converged, iterations = _solve(cells, cells.count[None, :], ties, l2, tol, max_iter)
    return BTFit(
        log_strength=theta[0],
        nu=None if nu is None else float(nu[0]),
        converged=bool(converged[0]),
        iterations=iterations,
    )


def pair_counts(cells: Cells) -> FloatArray:
    """Vote counts per pair column, shape (3P,): ``[lo beat hi | hi beat lo | ties]``, the
    P pairs (lo < hi) in lexicographic order. The likelihood depends on the cells only
    through these (which model was model_a does not matter)."""
    return np.asarray(_pair_map(cells).matrix.T @ cells.count, dtype=np.float64)


def _draw(counts: FloatArray, rounds: int, seed: int, draw: Draw) -> FloatArray:
    rng = np.random.default_rng(seed)
    if draw == "poisson":
        return rng.poisson(counts, size=(rounds, len(counts))).astype(np.float64)
    if draw != "multinomial":
        raise ValueError(f"unknown draw {draw!r}")
    total = counts.sum()
    if total <= 0:
        return np.zeros((rounds, len(counts)))
    return rng.multinomial(int(total), counts / total, size=rounds).astype(np.float64)


def draw_cell_counts(
    cells: Cells, rounds: int, seed: int, draw: Draw = "multinomial"
) -> FloatArray:
    """Bootstrap cell counts (R, cells). ``multinomial``:
    ``default_rng(seed).multinomial(N, counts / N, size=rounds)``, the very draws of Chatbot
    Arena's bootstrap; ``poisson``: ``default_rng(seed).poisson(counts, (rounds, cells))``."""
    return _draw(cells.count, rounds, seed, draw)


def draw_pair_counts(cells: Cells, rounds: int, seed: int, draw: Draw = "poisson") -> FloatArray:
    """Bootstrap pair-column counts (R, 3P) in :func:`pair_counts` order.

    ``multinomial``: Multinomial(N, c/N) over the 3P columns c — the same law of what the
    fit sees as the cell draw (a column is a sum of cells), in half the binomial draws.
    ``poisson``: independent Poisson(c_k) per column, the Poisson bootstrap: the column
    counts given their total N* are Multinomial(N*, c/N), N* ~ Poisson(N) (2-2.6x
    cheaper than the multinomial for 30 models).
    """
    return _draw(pair_counts(cells), rounds, seed, draw)


def resolve_draw(draw: DrawChoice, n_votes: int) -> Draw:
    """``auto``: ``poisson`` from :data:`POISSON_MIN_VOTES` votes on, else ``multinomial``."""
    if draw == "auto":
        return "poisson" if n_votes >= POISSON_MIN_VOTES else "multinomial"
    return draw


def bootstrap_log_strengths(
    cells: Cells,
    point: BTFit,
    boot_counts: FloatArray,
    ties: TieModel = "half",
    *,
    l2: float = 0.0,
    tol: float = BOOT_TOL,
    max_iter: int = 100,
    per: CountsPer = "cell",
) -> tuple[FloatArray, BoolArray]:
    """Solve all bootstrap rounds (rows of ``boot_counts``) at once, warm-started at ``point``.

    ``boot_counts`` holds per-cell counts (``per="cell"``, as :func:`draw_cell_counts`) or
    per pair column (``per="pair"``, as :func:`draw_pair_counts`). Each round runs the chord
    iteration with the point estimate's Hessian until a step is below ``tol`` (nats,
    max-norm; the error left is smaller), or damped Newton to the same step size where the
    chord does not contract fast. Returns θ per round (R, M) and a per-round convergence
    flag (False also where the round's MLE does not exist).
    """
    pm = _pair_map(cells)
    n_pairs = len(pm.lo)
    if per == "cell":
        counts = _pair_counts(pm, boot_counts)
    elif boot_counts.shape[1] == 3 * n_pairs:
        counts = (
            boot_counts[:, :n_pairs],
            boot_counts[:, n_pairs : 2 * n_pairs],
            boot_counts[:, 2 * n_pairs :],
        )
    else:
        raise ValueError(f"per='pair' needs {3 * n_pairs} columns, got {boot_counts.shape[1]}")
    data = _pair_counts(pm, cells.count[None, :])
    x_point = np.asarray(point.log_strength, dtype=np.float64)
    if ties == "davidson":
        x_point = np.append(x_point, math.log(point.nu if point.nu else 1e-6))
    data_row = (data[0][0], data[1][0], data[2][0])
    x, converged = _bootstrap_solve(
        pm, cells.n_models, counts, data_row, x_point, ties, l2, tol, max_iter
    )
    theta, _, converged = _finish(pm, cells.n_models, x, converged, counts, ties, l2)
    return theta, converged


def to_elo(
    log_strength: npt.ArrayLike,
    *,
    scale: float = ELO_SCALE,
    base: float = ELO_BASE,
    init: float = ELO_INIT,
) -> FloatArray:
    """Elo = init + scale · θ / ln(base) for natural-log strengths θ."""
    return init + scale * np.asarray(log_strength, dtype=float) / math.log(base)


def win_fraction_matrix(cells: Cells) -> FloatArray:
    """F[i, j] = (wins of i over j + ties/2) / games between i and j; NaN without games."""
    m = cells.n_models
    score = np.zeros((m, m))
    games = np.zeros((m, m))
    a_score = cells.outcome / 2.0
    np.add.at(score, (cells.i, cells.j), cells.count * a_score)
    np.add.at(score, (cells.j, cells.i), cells.count * (1.0 - a_score))
    np.add.at(games, (cells.i, cells.j), cells.count)
    np.add.at(games, (cells.j, cells.i), cells.count)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(games > 0, score / np.where(games > 0, games, 1.0), np.nan)


@dataclass(frozen=True)
class ModelRating:
    """One model's rating: Elo with its bootstrap interval, and the raw log-strength."""

    model: str
    rank: int
    elo: float
    elo_low: float | None
    elo_high: float | None
    log_strength: float
    n_votes: int


@dataclass(frozen=True)
class BradleyTerryResult:
    """Ratings sorted by Elo (best first) plus the win-fraction matrix in ``models`` order."""

    models: tuple[str, ...]
    ratings: tuple[ModelRating, ...]
    win_fraction: tuple[tuple[float | None, ...], ...]
    ties: str
    tie_nu: float | None
    both_bad: str
    n_votes: int
    rounds: int
    seed: int
    level: float
    converged: bool
    rounds_not_converged: int
    draw: str  # the bootstrap draw used ("multinomial" / "poisson")

    def to_dict(self) -> dict[str, Any]:
        return plain(self)  # type: ignore[no-any-return]


def bradley_terry(
    frame: pd.DataFrame,
    *,
    models: list[str] | None = None,
    ties: TieModel = "half",
    both_bad: BothBadPolicy = "exclude",
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    l2: float = 0.0,
    include_repeats: bool = False,
    draw: DrawChoice = "auto",
) -> BradleyTerryResult:
    """Bradley-Terry ratings of every model in a vote frame, with bootstrap intervals.

    Repeat votes are left out unless ``include_repeats``. ``draw``: the bootstrap draw of
    the pair counts (:func:`draw_pair_counts`; ``auto``: :func:`resolve_draw`).
    """
    names, cells = vote_cells(first_votes(frame, include_repeats), models, both_bad)
    if len(names) < 2:
        raise ValueError("need at least two models")
    point = fit_bradley_terry(cells, ties, l2=l2)
    elo = to_elo(point.log_strength)
    low = high = np.full(len(names), np.nan)
    not_converged = 0
    method = resolve_draw(draw, cells.n_votes)
    if rounds > 0 and cells.n_votes > 0:
        boot_counts = draw_pair_counts(cells, rounds, seed, method)
        boot_theta, ok = bootstrap_log_strengths(cells, point, boot_counts, ties, l2=l2, per="pair")
        boot_elo = to_elo(boot_theta)
        low, high = np.quantile(boot_elo, [(1 - level) / 2, (1 + level) / 2], axis=0)
        not_converged = int((~ok).sum())
    per_model = np.zeros(len(names))
    np.add.at(per_model, cells.i, cells.count)
    np.add.at(per_model, cells.j, cells.count)
    order = np.argsort(-elo, kind="stable")
    ratings = tuple(
        ModelRating(
            model=names[k],
            rank=rank + 1,
            elo=float(elo[k]),
            elo_low=opt_float(low[k]),
            elo_high=opt_float(high[k]),
            log_strength=float(point.log_strength[k]),
            n_votes=int(per_model[k]),
        )
        for rank, k in enumerate(order)
    )
    fractions = win_fraction_matrix(cells)
    return BradleyTerryResult(
        models=tuple(names),
        ratings=ratings,
        win_fraction=tuple(tuple(opt_float(v) for v in row) for row in fractions),
        ties=ties,
        tie_nu=point.nu,
        both_bad=both_bad,
        n_votes=cells.n_votes,
        rounds=rounds,
        seed=seed,
        level=level,
        converged=point.converged,
        rounds_not_converged=not_converged,
        draw=method,
    )
