"""Verdict per question category, with Holm-corrected sign tests.

For each category: the counts and win rates of :mod:`verdict` (both_bad reported on
its own, excluded from win-rate denominators), the Wilson interval of the decisive win
rate, the exact sign-test p-value, and that p-value Holm-adjusted across the categories
(step-down: p_(k) · (m − k + 1), made monotone, capped at 1; statsmodels
``multipletests(method="holm")``). A category is flagged when the adapted model loses
significantly: Holm-adjusted p < alpha and fewer wins than losses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from sbs.analysis.stats._plain import plain
from sbs.analysis.stats.frame import first_votes, pair_outcomes
from sbs.analysis.stats.multiplicity import holm
from sbs.analysis.stats.verdict import Verdict, verdict_from_outcomes


@dataclass(frozen=True)
class CategoryVerdict:
    """Verdict of the adapted model in one category."""

    category: str
    verdict: Verdict
    sign_test_p_holm: float | None
    adapted_loses: bool  # Holm-adjusted p < alpha and wins < losses
    adapted_wins: bool  # Holm-adjusted p < alpha and wins > losses

    def to_dict(self) -> dict[str, Any]:
        return plain(self)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class CategoryReport:
    """All categories (sorted by name) with the Holm family size and alpha used."""

    adapted: str
    original: str
    alpha: float
    categories: tuple[CategoryVerdict, ...]

    @property
    def flagged(self) -> tuple[str, ...]:
        """Categories where the adapted model loses significantly."""
        return tuple(c.category for c in self.categories if c.adapted_loses)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = plain(self)
        out["flagged"] = list(self.flagged)
        return out


def category_verdicts(
    frame: pd.DataFrame,
    adapted: str,
    original: str,
    *,
    alpha: float = 0.05,
    rounds: int = 0,
    seed: int = 0,
    include_repeats: bool = False,
) -> CategoryReport:
    """Per-category verdict of ``adapted`` vs ``original`` with Holm-corrected sign tests.

    ``rounds > 0`` adds the win rates' intervals per category (the verdict's method:
    two-way cluster-robust by question and annotator; same seed for each).
    Categories without decisive votes have no p-value and do not count in the Holm family.
    Repeat votes are left out unless ``include_repeats``.
    """
    rows = pair_outcomes(first_votes(frame, include_repeats), adapted, original)
    verdicts: list[tuple[str, Verdict]] = []
    for category, group in rows.groupby("category", sort=True):
        verdicts.append(
            (
                str(category),
                verdict_from_outcomes(
                    group["outcome"].to_numpy(dtype=object),
                    group["question"].to_numpy(dtype=object),
                    group["annotator"].to_numpy(dtype=object),
                    model=adapted,
                    opponent=original,
                    rounds=rounds,
                    seed=seed,
                    level=1.0 - alpha,
                ),
            )
        )
    adjusted = holm([v.sign_test_p for _, v in verdicts])
    out = []
    for (category, v), p_adj in zip(verdicts, adjusted, strict=True):
        significant = p_adj is not None and p_adj < alpha
        out.append(
            CategoryVerdict(
                category=category,
                verdict=v,
                sign_test_p_holm=p_adj,
                adapted_loses=significant and v.wins < v.losses,
                adapted_wins=significant and v.wins > v.losses,
            )
        )
    return CategoryReport(adapted=adapted, original=original, alpha=alpha, categories=tuple(out))
