"""Summaries over the other statistics' results, for the report (pure; no Django).

Speed beside the win rate, self-consistency pooled over annotators, how many annotators
each per-annotator test flags, and the most extreme annotators (the rows a page shows
when there are too many to read).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sbs.analysis.stats._plain import opt_float, plain


def vote_counts(frame: pd.DataFrame, firsts: pd.DataFrame) -> dict[str, int]:
    """Votes, first votes, repeat votes, questions and annotators of a vote frame."""
    return {
        "votes": len(frame),
        "first_votes": len(firsts),
        "repeat_votes": len(frame) - len(firsts),
        "questions": int(frame["question"].nunique()),
        "annotators": int(frame["annotator"].nunique()),
    }


def speed_section(
    rows: Sequence[Mapping[str, Any]],
    original: str,
    adapted: str,
    win_rate: float | None,
    *,
    rates: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """Per-model speed rows with each model's win rate (ties as half) beside them, plus the
    adapted/original ratios of free generation (None when a side is missing) and the
    controlled speed-ups on the fixed reference text, original time / adapted time.

    ``rates``: each system's win rate against all it met (a study of many systems); then
    there is no adapted/original ratio."""
    if rates is None:
        rates = {adapted: win_rate, original: None if win_rate is None else 1.0 - win_rate}
        pair = True
    else:
        pair = False
    rows = [{**r, "win_rate_ties_half": rates.get(r["model"])} for r in rows]
    by_model = {r["model"]: r for r in rows}
    ratio = None
    a, b = by_model.get(original), by_model.get(adapted)
    if pair and a and b:

        def div(key: str) -> float | None:
            top, bottom = opt_float(b.get(key)), opt_float(a.get(key))
            if top is None or not bottom:  # missing, NaN, infinite or zero
                return None
            return opt_float(top / bottom)

        def speedup(key: str) -> float | None:
            slow, fast = opt_float(a.get(key)), opt_float(b.get(key))
            if slow is None or not fast:
                return None
            return opt_float(slow / fast)

        ratio = {
            "new_tokens": div("median_new_tokens"),
            "tokens_per_second": div("median_tokens_per_second"),
            "chars_per_second": div("median_chars_per_second"),
            "chars": div("median_chars"),
            "reference_forced_speedup": speedup("reference_forced_s_per_1000_chars"),
            "reference_single_pass_speedup": speedup("reference_single_pass_s_per_1000_chars"),
        }
    return plain({"rows": [dict(r) for r in rows], "ratio": ratio})  # type: ignore[no-any-return]


def self_consistency(annotators: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Repeated pairs (sides swapped) pooled over annotators: same model-space label twice."""
    pairs = sum(a["repeat_pairs"] for a in annotators)
    same = sum(a["repeat_consistent"] for a in annotators)
    decisive = sum(a["repeat_decisive_pairs"] for a in annotators)
    decisive_same = sum(a["repeat_decisive_consistent"] for a in annotators)
    return {
        "pairs": pairs,
        "consistent": same,
        "rate": same / pairs if pairs else None,
        "decisive_pairs": decisive,
        "decisive_consistent": decisive_same,
        "decisive_rate": decisive_same / decisive if decisive else None,
    }


def annotator_flags(annotators: Sequence[Mapping[str, Any]], *, alpha: float) -> dict[str, Any]:
    """How many annotators each per-annotator test flags (BH-adjusted p < ``alpha``)."""
    return {
        "annotators": len(annotators),
        "alpha": alpha,
        "correction": "Benjamini-Hochberg (false discovery rate) across annotators",
        "position_bias": sum(bool(a["position_bias_flag"]) for a in annotators),
        "low_agreement": sum(bool(a["loo_flag"]) for a in annotators),
    }


def _extremeness(a: Mapping[str, Any]) -> tuple[float, float, int, str]:
    ps = [p for p in (a.get("position_bias_p_adjusted"), a.get("loo_p_adjusted")) if p is not None]
    rate = a.get("left_rate")
    return (
        min(ps) if ps else 2.0,
        -abs(rate - 0.5) if rate is not None else 0.0,
        -int(a.get("n_votes") or 0),
        str(a.get("annotator")),
    )


def most_extreme_annotators(
    annotators: Sequence[Mapping[str, Any]], n: int
) -> list[Mapping[str, Any]]:
    """The ``n`` annotators with the strongest evidence against them, strongest first.

    Ordered by the smaller of their two BH-adjusted p-values (position bias, agreement with
    the majority), then by how far their left-choice rate is from 50 %, then by votes.
    """
    return sorted(annotators, key=_extremeness)[: max(n, 0)]
