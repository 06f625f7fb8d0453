"""Forgetting: the drop of benchmark scores from the original model to the adapted one.

Input, per benchmark and prompt format both models were scored on, the items both scored
(plain lists: category, number of choices, gold index, index of the longest choice, and each
model's ``correct`` / ``correct_norm``; see ``sbs.questions.selectors.forgetting_inputs``).
One row per benchmark (all its items) and, when it has two or more, per category:

* the score of each model: ``acc_norm`` (the choice with the highest log-likelihood per
  character) in the cloze format, ``acc`` in the lettered one (the letters have one
  character each, so the two are equal there); both metrics are reported;
* baselines that read no question: chance ``mean(1 / choices)``, always the first choice,
  always the longest, always the most frequent gold position of the row's items (an oracle);
* the drop ``d = score(original) - score(adapted)`` (positive: the adapted model forgot) and
  the relative drop ``d / score(original)``;
* a paired bootstrap interval of ``d``: items resampled with replacement, the same items for
  both models, ``rounds`` times; the percentile interval at ``level``;
* an exact one-sided McNemar test of "the adapted model is worse": with ``b`` items only the
  original gets right and ``c`` only the adapted, ``p = P(X >= b)`` for ``X ~ Bin(b + c, 1/2)``;
* that p-value Holm-adjusted across every row of the table (the family), and the row flagged
  when the adjusted p is below ``alpha`` (the drop is then positive).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.stats import binomtest

from sbs.analysis.stats._plain import plain
from sbs.analysis.stats.multiplicity import holm

ALL = ""  # the category of a benchmark's overall row


@dataclass(frozen=True)
class ForgettingRow:
    benchmark: str
    prompt_format: str
    category: str  # "" for the whole benchmark
    n: int
    metric: str  # "acc_norm" (cloze) or "acc" (lettered)
    original: float | None
    adapted: float | None
    original_acc: float | None
    adapted_acc: float | None
    original_acc_norm: float | None
    adapted_acc_norm: float | None
    chance: float | None
    first: float | None
    longest: float | None
    majority: float | None
    drop: float | None
    relative_drop: float | None
    drop_low: float | None
    drop_high: float | None
    only_original: int  # items only the original gets right (McNemar's b)
    only_adapted: int  # items only the adapted model gets right (c)
    p: float | None
    p_holm: float | None = None
    forgets: bool = False  # Holm-adjusted p < alpha


@dataclass(frozen=True)
class ForgettingTable:
    alpha: float
    level: float
    rounds: int
    rows: tuple[ForgettingRow, ...]

    @property
    def flagged(self) -> list[str]:
        return [
            f"{r.benchmark} / {r.category}" if r.category else r.benchmark
            for r in self.rows
            if r.forgets
        ]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = plain(self)
        out["flagged"] = self.flagged
        return out


def baselines(
    n_choices: np.ndarray, answer: np.ndarray, longest: np.ndarray
) -> dict[str, float | None]:
    """Chance, first choice, longest choice and most frequent gold position (see module)."""
    if not len(answer):
        return {"chance": None, "first": None, "longest": None, "majority": None}
    counts = np.bincount(answer)
    return {
        "chance": float(np.mean(1.0 / n_choices)),
        "first": float(np.mean(answer == 0)),
        "longest": float(np.mean(answer == longest)),
        "majority": float(counts.max() / len(answer)),
    }


def paired_bootstrap(
    original: np.ndarray, adapted: np.ndarray, *, rounds: int, seed: int, level: float
) -> tuple[float | None, float | None]:
    """Percentile interval of ``mean(original) - mean(adapted)`` over items resampled with
    replacement, the same resample for both (None without items or rounds)."""
    n = len(original)
    if not n or rounds <= 0:
        return None, None
    rng = np.random.default_rng(seed)
    diff = original.astype(float) - adapted.astype(float)
    means = np.empty(rounds)
    step = max(1, 2_000_000 // n)  # bounded memory: at most ~2M indices at a time
    for start in range(0, rounds, step):
        size = min(step, rounds - start)
        means[start : start + size] = diff[rng.integers(0, n, size=(size, n))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def mcnemar_worse(only_original: int, only_adapted: int) -> float | None:
    """Exact one-sided McNemar p-value that the adapted model is worse (None: no discordant
    items)."""
    n = only_original + only_adapted
    if not n:
        return None
    return float(binomtest(only_original, n, 0.5, alternative="greater").pvalue)


def _row(
    entry: Mapping[str, Any], mask: np.ndarray, category: str, rounds: int, seed: int, level: float
) -> ForgettingRow:
    metric = "acc" if entry["prompt_format"] == "lettered" else "acc_norm"
    pick = {
        side: {m: np.asarray(entry[side][m], dtype=bool)[mask] for m in ("correct", "correct_norm")}
        for side in ("original", "adapted")
    }
    key = "correct" if metric == "acc" else "correct_norm"
    a, b = pick["original"][key], pick["adapted"][key]
    n = int(mask.sum())

    def mean(x: np.ndarray) -> float | None:
        return float(x.mean()) if len(x) else None

    original, adapted = mean(a), mean(b)
    drop = original - adapted if original is not None and adapted is not None else None
    only_original, only_adapted = int(np.sum(a & ~b)), int(np.sum(~a & b))
    low, high = paired_bootstrap(a, b, rounds=rounds, seed=seed, level=level)
    base = baselines(
        np.asarray(entry["n_choices"], dtype=float)[mask],
        np.asarray(entry["answer"], dtype=int)[mask],
        np.asarray(entry["longest"], dtype=int)[mask],
    )
    return ForgettingRow(
        benchmark=str(entry["benchmark"]),
        prompt_format=str(entry["prompt_format"]),
        category=category,
        n=n,
        metric=metric,
        original=original,
        adapted=adapted,
        original_acc=mean(pick["original"]["correct"]),
        adapted_acc=mean(pick["adapted"]["correct"]),
        original_acc_norm=mean(pick["original"]["correct_norm"]),
        adapted_acc_norm=mean(pick["adapted"]["correct_norm"]),
        chance=base["chance"],
        first=base["first"],
        longest=base["longest"],
        majority=base["majority"],
        drop=drop,
        relative_drop=drop / original if drop is not None and original else None,
        drop_low=low,
        drop_high=high,
        only_original=only_original,
        only_adapted=only_adapted,
        p=mcnemar_worse(only_original, only_adapted),
    )


def forgetting_table(
    benchmarks: Sequence[Mapping[str, Any]],
    *,
    alpha: float = 0.05,
    level: float = 0.95,
    rounds: int = 2000,
    seed: int = 0,
) -> ForgettingTable:
    """The forgetting table of the adapted model against the original (module docstring).

    Every row's bootstrap uses ``seed``, so a row does not change when another benchmark
    is added; the Holm family is every row of the table.
    """
    rows: list[ForgettingRow] = []
    for entry in benchmarks:
        categories = np.asarray(entry["category"], dtype=object)
        if not len(categories):
            continue
        rows.append(_row(entry, np.ones(len(categories), dtype=bool), ALL, rounds, seed, level))
        names = sorted({str(c) for c in categories})
        if len(names) > 1:
            for name in names:
                rows.append(_row(entry, categories == name, name, rounds, seed, level))
    adjusted = holm([r.p for r in rows])
    final = tuple(
        replace(r, p_holm=q, forgets=q is not None and q < alpha and (r.drop or 0) > 0)
        for r, q in zip(rows, adjusted, strict=True)
    )
    return ForgettingTable(alpha=alpha, level=level, rounds=rounds, rows=final)
