"""The full report of a two-model study as one JSON-serialisable dict (pure; no Django).

:func:`build_report` takes the canonical vote frame (see :mod:`sbs.analysis.stats`) and
the per-model speed rows and calls the statistics modules; nothing here re-derives a
statistic. The Celery job computes it with ``rounds`` bootstrap rounds. :func:`build_preliminary` is
the part a request may compute inline (counts, win rates, Wilson intervals, sign test,
power, speed: ~10 ms on 78 x 15 votes); the rest waits for the job (the agreement
statistics alone take about a second there).

Orientation: every verdict is the adapted model's (model B) against the original's
(model A). Policies are those of the statistics package: repeat votes only measure
self-consistency; ``both_bad`` is reported apart, out of every win-rate denominator.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sbs.analysis.stats._plain import plain
from sbs.analysis.stats.agreement import agreement, annotator_stats
from sbs.analysis.stats.bradley_terry import bradley_terry
from sbs.analysis.stats.categories import category_verdicts
from sbs.analysis.stats.frame import first_votes, models_in
from sbs.analysis.stats.power import votes_needed
from sbs.analysis.stats.verdict import verdict

SCHEMA = 1
LEVEL = 0.95
ALPHA = 0.05
POWER = 0.8

# The sections of a report, in page order; the JSON export carries every one of them.
SECTIONS = (
    "verdict",
    "speed",
    "categories",
    "annotators",
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
            return b[key] / a[key] if a[key] else None

        ratio = {
            "new_tokens": div("median_new_tokens"),
            "tokens_per_second": div("median_tokens_per_second"),
            "chars_per_second": div("median_chars_per_second"),
            "chars": div("median_chars"),
        }
    return {"rows": [dict(r) for r in rows], "ratio": plain(ratio)}


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
    return {
        "schema": SCHEMA,
        "preliminary": True,
        "models": {"original": original, "adapted": adapted},
        "settings": {"rounds": 0, "seed": seed, "level": LEVEL, "alpha": ALPHA},
        "counts": _counts(frame, firsts),
        "verdict": v.to_dict(),
        "speed": speed_section(speed, original, adapted, v.win_rate_ties_half),
        "categories": None,
        "annotators": None,
        "self_consistency": None,
        "agreement": None,
        "power": power.to_dict(),
        "ranking": None,
    }


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
    annotators = [a.to_dict() for a in annotator_stats(frame)] if len(frame) else []
    ranking = None
    if len(firsts) and len(models_in(firsts)) >= 2:
        ranking = bradley_terry(
            frame, models=[adapted, original], rounds=rounds, seed=seed, level=LEVEL
        ).to_dict()
    power = votes_needed(v.wins, v.losses, v.n_questions, alpha=ALPHA, power=POWER)
    return {
        "schema": SCHEMA,
        "preliminary": False,
        "models": {"original": original, "adapted": adapted},
        "settings": {"rounds": rounds, "seed": seed, "level": LEVEL, "alpha": ALPHA},
        "counts": _counts(frame, firsts),
        "verdict": v.to_dict(),
        "speed": speed_section(speed, original, adapted, v.win_rate_ties_half),
        "categories": cats.to_dict(),
        "annotators": annotators,
        "self_consistency": self_consistency(annotators),
        "agreement": agreement(frame).to_dict() if len(frame) else None,
        "power": power.to_dict(),
        "ranking": ranking,
        "compute_seconds": time.perf_counter() - started,
    }
