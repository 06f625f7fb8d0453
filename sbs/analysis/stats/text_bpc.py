"""Bits per character of both models on the shipped held-out texts, by category.

For small models, multiple-choice accuracy sits near chance; likelihood of plain text is the
signal that moves. Input, per category, each paragraph's bits under each model and its
characters (the same text for both, so characters are shared; see
``sbs.questions.selectors.text_bpc_inputs``). Per category:

* ``bpc = Σ bits / Σ chars`` of each model (per character, so tokenizers compare fairly);
* the change ``Δ = bpc(adapted) − bpc(original)`` (positive: the adapted model forgot) and
  the relative change ``Δ / bpc(original)``;
* a paired bootstrap interval of ``Δ``: paragraphs resampled with replacement, the same
  paragraphs for both models, ``rounds`` times, each replicate a ratio of sums; the
  percentile interval at ``level``. A row is flagged when the whole interval lies above 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sbs.analysis.stats._plain import plain


def _bpc(bits: np.ndarray, chars: np.ndarray) -> float | None:
    total = float(chars.sum())
    return float(bits.sum()) / total if total > 0 else None


def text_bpc_table(
    texts: Mapping[str, Mapping[str, Any]], *, rounds: int = 2000, seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:  # fmt: skip
    """One row per category (sorted): both models' bpc, the change, its paired bootstrap
    interval and the flag (module docstring)."""
    rng = np.random.default_rng(seed)
    rows = []
    for category in sorted(texts):
        data = texts[category]
        chars = np.asarray(data["chars"], dtype=float)
        original = np.asarray(data["original"], dtype=float)
        adapted = np.asarray(data["adapted"], dtype=float)
        if not (len(chars) == len(original) == len(adapted)) or not len(chars):
            continue
        bpc_o, bpc_a = _bpc(original, chars), _bpc(adapted, chars)
        change = None if bpc_o is None or bpc_a is None else bpc_a - bpc_o
        low = high = None
        if change is not None and rounds > 0:
            picks = rng.integers(0, len(chars), size=(rounds, len(chars)))
            total = chars[picks].sum(axis=1)
            delta = (adapted[picks].sum(axis=1) - original[picks].sum(axis=1)) / total
            tail = (1 - level) / 2
            low, high = (float(x) for x in np.quantile(delta, [tail, 1 - tail]))
        rows.append(
            {
                "category": category,
                "paragraphs": len(chars),
                "chars": int(chars.sum()),
                "original": bpc_o,
                "adapted": bpc_a,
                "change": change,
                "relative_change": None if change is None or not bpc_o else change / bpc_o,
                "change_low": low,
                "change_high": high,
                "forgets": bool(low is not None and low > 0),
            }
        )
    return plain({"rows": rows, "rounds": rounds, "level": level})  # type: ignore[no-any-return]
