"""Every pair of systems of a study of N: the win-rate matrix and a verdict per pair.

Over the first votes (repeats out), with the verdict's policy (:mod:`.verdict`): a tie is
half a win each, ``both_bad`` is out of every denominator. For systems i and j with W_ij
votes for i, W_ji for j and T_ij ties:

* ``matrix[i][j]`` = (W_ij + T_ij / 2) / (W_ij + W_ji + T_ij), so matrix[i][j] +
  matrix[j][i] = 1; None where the pair has no such vote (and on the diagonal);
* ``counts[i][j]`` = W_ij + W_ji + T_ij;
* ``overall[i]`` = Σ_j (W_ij + T_ij / 2) / Σ_j counts[i][j]: i against everyone it met;
* per pair with votes, :func:`~.verdict.verdict` of the system with the higher rate (the
  earlier one on a tie) against the other: counts, win rate, its two-way clustered
  interval and the exact sign test of W against L. The sign tests of all pairs form one
  family, adjusted by Holm (:func:`~.multiplicity.holm`, family-wise error); a pair is
  ``significant`` when its adjusted p is below ``alpha``. Pairs without decisive votes
  have no test and are left out of the family.

Each pair's interval draws from its own seed (``SeedSequence([seed, i, j])``), so no two
pairs share bootstrap draws. The counting is vectorised (``np.add.at`` over the votes) and
the votes are split by pair once (:func:`pair_frames`), so each pair's verdict reads only
its own votes: the whole costs about one pass over the votes, not one per pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sbs.analysis.stats._plain import opt_float, plain
from sbs.analysis.stats.frame import derive_outcomes, first_votes
from sbs.analysis.stats.multiplicity import holm
from sbs.analysis.stats.verdict import Verdict, verdict


@dataclass(frozen=True)
class PairVerdict:
    """One pair of systems: ``model`` is the one with the higher win rate."""

    model: str
    opponent: str
    wins: int
    losses: int
    ties: int
    both_bad: int
    n_votes: int
    win_rate: float | None  # ties as half
    low: float | None
    high: float | None
    p: float | None  # exact sign test, W of W + L
    p_holm: float | None
    significant: bool


@dataclass(frozen=True)
class Pairwise:
    systems: tuple[str, ...]
    matrix: tuple[tuple[float | None, ...], ...]
    counts: tuple[tuple[int, ...], ...]
    overall: tuple[float | None, ...]
    pairs: tuple[PairVerdict, ...]
    correction: str
    alpha: float
    level: float
    n_tests: int

    def to_dict(self) -> dict[str, Any]:
        return plain(self)  # type: ignore[no-any-return]

    def overall_by_system(self) -> dict[str, float | None]:
        return dict(zip(self.systems, self.overall, strict=True))


def _pair_codes(firsts: pd.DataFrame, systems: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per vote of ``firsts``, the positions (i, j) of its model_a and model_b in
    ``systems``; -1 for a model that is not one of them."""
    index = {s: k for k, s in enumerate(systems)}
    i = firsts["model_a"].map(index).fillna(-1).to_numpy(dtype=int)
    j = firsts["model_b"].map(index).fillna(-1).to_numpy(dtype=int)
    return i, j


def win_counts(frame: pd.DataFrame, systems: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(W, T): W[i, j] votes for system i over j, T[i, j] = T[j, i] ties between them, over
    the first votes of pairs of ``systems`` (votes of any other system are left out)."""
    firsts = first_votes(frame)
    i, j = _pair_codes(firsts, systems)
    known = (i >= 0) & (j >= 0)
    i, j = i[known], j[known]
    outcome = derive_outcomes(firsts).to_numpy(dtype=object)[known]
    n = len(systems)
    wins = np.zeros((n, n))
    ties = np.zeros((n, n))
    a, b, t = outcome == "a", outcome == "b", outcome == "tie"
    np.add.at(wins, (i[a], j[a]), 1)
    np.add.at(wins, (j[b], i[b]), 1)
    np.add.at(ties, (i[t], j[t]), 1)
    np.add.at(ties, (j[t], i[t]), 1)
    return wins, ties


def pair_frames(frame: pd.DataFrame, systems: Sequence[str]) -> dict[tuple[int, int], pd.DataFrame]:
    """The first votes of each pair of ``systems`` that has any (both bad included), keyed
    by the pair's positions (i, j), i < j, whatever the storage order: one pass over the
    votes, so each pair's verdict reads only its own votes."""
    firsts = first_votes(frame)
    i, j = _pair_codes(firsts, systems)
    known = (i >= 0) & (j >= 0)
    low, high = np.minimum(i, j)[known], np.maximum(i, j)[known]
    key = low * len(systems) + high
    rows = firsts.loc[known]
    return {
        divmod(int(k), len(systems)): rows.iloc[positions]
        for k, positions in pd.Series(np.arange(len(key))).groupby(key).indices.items()
    }


def _pair_seed(seed: int, i: int, j: int) -> int:
    return int(np.random.SeedSequence([seed, i, j]).generate_state(1)[0])


def _interval(v: Verdict) -> tuple[float | None, float | None]:
    boot = v.bootstrap_ties_half
    if boot is not None and boot.low is not None:
        return boot.low, boot.high
    return v.wilson_ties_half


def pairwise(
    frame: pd.DataFrame,
    systems: Sequence[str],
    *,
    rounds: int,
    seed: int,
    alpha: float = 0.05,
    level: float = 0.95,
) -> Pairwise:
    """The win-rate matrix of ``systems`` (in their order) and a Holm-adjusted verdict for
    every pair of them that has votes (see the module docstring)."""
    systems = tuple(systems)
    wins, ties = win_counts(frame, systems)
    games = wins + wins.T + ties
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(games > 0, (wins + ties / 2) / np.where(games > 0, games, 1), np.nan)
        overall = (wins + ties / 2).sum(axis=1) / games.sum(axis=1)
    n = len(systems)
    verdicts = []
    for (i, j), votes in sorted(pair_frames(frame, systems).items()):
        first, second = (i, j) if not rate[j, i] > rate[i, j] else (j, i)
        verdicts.append(
            verdict(
                votes, systems[first], systems[second], rounds=rounds,
                seed=_pair_seed(seed, i, j), level=level,
            )
        )  # fmt: skip
    adjusted = holm([v.sign_test_p for v in verdicts])
    pairs = [
        PairVerdict(
            model=v.model,
            opponent=v.opponent,
            wins=v.wins,
            losses=v.losses,
            ties=v.ties,
            both_bad=v.both_bad,
            n_votes=v.n_votes,
            win_rate=v.win_rate_ties_half,
            low=_interval(v)[0],
            high=_interval(v)[1],
            p=v.sign_test_p,
            p_holm=p,
            significant=p is not None and p < alpha,
        )  # fmt: skip
        for v, p in zip(verdicts, adjusted, strict=True)
    ]
    pairs.sort(key=lambda p: (p.p_holm is None, p.p_holm or 0.0, p.model, p.opponent))
    return Pairwise(
        systems=systems,
        matrix=tuple(
            tuple(None if i == j else opt_float(rate[i, j]) for j in range(n)) for i in range(n)
        ),
        counts=tuple(tuple(int(games[i, j]) for j in range(n)) for i in range(n)),
        overall=tuple(opt_float(x) for x in overall),
        pairs=tuple(pairs),
        correction="holm",
        alpha=alpha,
        level=level,
        n_tests=sum(p is not None for p in adjusted),
    )
