"""How many more votes are needed to tell the current win rate from 50 %.

Normal approximation for a one-sample test of a proportion (two-sided level alpha,
power 1 − beta), with p the current decisive win rate W / (W + L) and p0 = 0.5:

    n = ( z_{1−α/2} · sqrt(p0 (1 − p0)) + z_{1−β} · sqrt(p (1 − p)) )² / (p − p0)²

decisive votes in total; additional = max(0, ceil(n) − (W + L)). Questions are
converted at the current decisive votes per question. With p = 0.5 exactly no sample
size suffices: the counts are None and ``reachable`` is False.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scipy.stats import norm

from sbs.analysis.stats._plain import plain


@dataclass(frozen=True)
class PowerEstimate:
    """Sample size needed to distinguish ``win_rate`` from 0.5."""

    win_rate: float | None  # current decisive win rate W / (W + L)
    decisive_votes: int
    questions: int
    alpha: float
    power: float
    reachable: bool
    required_decisive_votes: int | None
    additional_decisive_votes: int | None
    decisive_votes_per_question: float | None
    additional_questions: int | None

    def to_dict(self) -> dict[str, Any]:
        return plain(self)  # type: ignore[no-any-return]


def required_decisive_votes(
    win_rate: float, *, alpha: float = 0.05, power: float = 0.8, p0: float = 0.5
) -> int | None:
    """Total decisive votes n from the formula in the module docstring; None if p == p0."""
    if not 0.0 <= win_rate <= 1.0:
        raise ValueError("win_rate must be within [0, 1]")
    if win_rate == p0:
        return None
    z_alpha = float(norm.ppf(1 - alpha / 2))
    z_beta = float(norm.ppf(power))
    root = z_alpha * math.sqrt(p0 * (1 - p0)) + z_beta * math.sqrt(win_rate * (1 - win_rate))
    return math.ceil(root**2 / (win_rate - p0) ** 2)


def votes_needed(
    wins: int,
    losses: int,
    questions: int,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> PowerEstimate:
    """Additional decisive votes (and questions, at the current votes per question) needed."""
    decisive = wins + losses
    rate = wins / decisive if decisive else None
    per_question = decisive / questions if questions and decisive else None
    required = None if rate is None else required_decisive_votes(rate, alpha=alpha, power=power)
    additional = None if required is None else max(0, required - decisive)
    more_questions = None
    if additional is not None and per_question:
        more_questions = math.ceil(additional / per_question)
    return PowerEstimate(
        win_rate=rate,
        decisive_votes=decisive,
        questions=questions,
        alpha=alpha,
        power=power,
        reachable=required is not None,
        required_decisive_votes=required,
        additional_decisive_votes=additional,
        decisive_votes_per_question=per_question,
        additional_questions=more_questions,
    )
