"""The full report of a two-model study as one JSON-serialisable dict (pure; no Django).

:func:`build_report` takes the canonical vote frame (see :mod:`sbs.analysis.stats`) and
the per-model speed rows and calls the statistics modules; nothing here re-derives a
statistic. The Celery job computes it with ``rounds`` bootstrap rounds. :func:`build_preliminary` is
the part a request may compute inline (counts, win rates, Wilson intervals, sign test,
power, speed: ~10 ms on 78 x 15 votes); the rest waits for the job (the agreement
statistics alone take about a second there).

Every number in the returned dicts is finite or None (:func:`~sbs.analysis.stats._plain.plain`
over the whole report), so the JSON export and the database's JSON column never see NaN
or infinity.

Orientation: every verdict is the adapted model's (model B) against the original's
(model A). Policies are those of the statistics package: repeat votes only measure
self-consistency; ``both_bad`` is reported apart, out of every win-rate denominator.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sbs.analysis.stats._plain import opt_float, plain
from sbs.analysis.stats.agreement import agreement, annotator_stats
from sbs.analysis.stats.bradley_terry import bradley_terry
from sbs.analysis.stats.categories import category_verdicts
from sbs.analysis.stats.frame import first_votes, models_in
from sbs.analysis.stats.power import votes_needed
from sbs.analysis.stats.verdict import verdict

SCHEMA = 2  # 2: BH-adjusted annotator tests and flags; every number finite or None
LEVEL = 0.95
ALPHA = 0.05
POWER = 0.8

# The sections of a report, in page order; the JSON export carries every one of them.
SECTIONS = (
    "verdict",
    "speed",
    "categories",
    "annotators",
    "annotator_flags",
    "self_consistency",
    "agreement",
    "power",
    "ranking",
)


def speed_section(
    rows: Sequence[Mapping[str, Any]], original: str, adapted: str, win_rate: float | None
) -> dict[str, Any]:
    """Per-model speed rows with each model's win rate (ties as half) beside them, plus the
    adapted/original ratios (None when a side is missing)."""
    rates = {adapted: win_rate, original: None if win_rate is None else 1.0 - win_rate}
    rows = [{**r, "win_rate_ties_half": rates.get(r["model"])} for r in rows]
    by_model = {r["model"]: r for r in rows}
    ratio = None
    a, b = by_model.get(original), by_model.get(adapted)
    if a and b:

        def div(key: str) -> float | None:
            top, bottom = opt_float(b.get(key)), opt_float(a.get(key))
            if top is None or not bottom:  # missing, NaN, infinite or zero
                return None
            return opt_float(top / bottom)

        ratio = {
            "new_tokens": div("median_new_tokens"),
            "tokens_per_second": div("median_tokens_per_second"),
            "chars_per_second": div("median_chars_per_second"),
            "chars": div("median_chars"),
        }
    return plain({"rows": [dict(r) for r in rows], "ratio": ratio})


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


def annotator_flags(annotators: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How many annotators each per-annotator test flags (BH-adjusted p < ALPHA)."""
    return {
        "annotators": len(annotators),
        "alpha": ALPHA,
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


def _counts(frame: pd.DataFrame, firsts: pd.DataFrame) -> dict[str, int]:
    return {
        "votes": len(frame),
        "first_votes": len(firsts),
        "repeat_votes": len(frame) - len(firsts),
        "questions": int(frame["question"].nunique()),
        "annotators": int(frame["annotator"].nunique()),
    }


def build_preliminary(
    frame: pd.DataFrame,
    *,
    original: str,
    adapted: str,
    speed: Sequence[Mapping[str, Any]] = (),
    seed: int = 0,
) -> dict[str, Any]:
    """The cheap part of the report (no bootstrap, no per-category or per-annotator tables).

    Same keys as :func:`build_report`; the sections left to the job are None and
    ``preliminary`` is True.
    """
    firsts = first_votes(frame)
    v = verdict(frame, adapted, original, rounds=0, seed=seed)
    power = votes_needed(v.wins, v.losses, v.n_questions, alpha=ALPHA, power=POWER)
    return plain(
        {
            "schema": SCHEMA,
            "preliminary": True,
            "models": {"original": original, "adapted": adapted},
            "settings": {"rounds": 0, "seed": seed, "level": LEVEL, "alpha": ALPHA},
            "counts": _counts(frame, firsts),
            "verdict": v.to_dict(),
            "speed": speed_section(speed, original, adapted, v.win_rate_ties_half),
            "categories": None,
            "annotators": None,
            "annotator_flags": None,
            "self_consistency": None,
            "agreement": None,
            "power": power.to_dict(),
            "ranking": None,
        }
    )


def build_report(
    frame: pd.DataFrame,
    *,
    original: str,
    adapted: str,
    speed: Sequence[Mapping[str, Any]] = (),
    rounds: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every table of the report; see the module docstring for orientation and policies."""
    started = time.perf_counter()
    firsts = first_votes(frame)
    v = verdict(frame, adapted, original, rounds=rounds if len(firsts) else 0, seed=seed)
    cats = category_verdicts(
        frame, adapted, original, alpha=ALPHA, rounds=rounds if len(firsts) else 0, seed=seed
    )
    annotators = [a.to_dict() for a in annotator_stats(frame, alpha=ALPHA)]
    ranking = None
    two = [adapted, original]
    pair = frame.loc[frame["model_a"].isin(two) & frame["model_b"].isin(two)]
    if len(models_in(first_votes(pair))) >= 2:  # votes of any other model are not rated
        ranking = bradley_terry(pair, models=two, rounds=rounds, seed=seed, level=LEVEL).to_dict()
    power = votes_needed(v.wins, v.losses, v.n_questions, alpha=ALPHA, power=POWER)
    return plain(
        {
            "schema": SCHEMA,
            "preliminary": False,
            "models": {"original": original, "adapted": adapted},
            "settings": {"rounds": rounds, "seed": seed, "level": LEVEL, "alpha": ALPHA},
            "counts": _counts(frame, firsts),
            "verdict": v.to_dict(),
            "speed": speed_section(speed, original, adapted, v.win_rate_ties_half),
            "categories": cats.to_dict(),
            "annotators": annotators,
            "annotator_flags": annotator_flags(annotators),
            "self_consistency": self_consistency(annotators),
            "agreement": agreement(frame).to_dict() if len(frame) else None,
            "power": power.to_dict(),
            "ranking": ranking,
            "compute_seconds": time.perf_counter() - started,
        }
    )
