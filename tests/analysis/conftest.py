"""Synthetic vote frames for the statistics tests (no Django)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sbs.analysis.stats.frame import vote_frame


def make_votes(
    outcomes: list[str],
    *,
    model_a: str = "adapted",
    model_b: str = "original",
    seed: int = 0,
    questions: list[str] | None = None,
    annotators: list[str] | None = None,
    categories: list[str] | None = None,
) -> pd.DataFrame:
    """A vote frame realising the given outcomes (model_a's view) with random screen sides."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, outcome in enumerate(outcomes):
        left = model_a if rng.random() < 0.5 else model_b
        if outcome in ("tie", "both_bad"):
            choice = outcome
        else:
            winner = model_a if outcome == "a" else model_b
            choice = "left" if winner == left else "right"
        rows.append(
            {
                "question": questions[k] if questions else f"q{k}",
                "category": categories[k] if categories else "general",
                "annotator": annotators[k] if annotators else f"u{k % 3}",
                "model_a": model_a,
                "model_b": model_b,
                "left": left,
                "choice": choice,
                "seconds": float(5 + k % 7),
            }
        )
    return vote_frame(rows)


@pytest.fixture
def small_frame() -> pd.DataFrame:
    return make_votes(["a"] * 12 + ["b"] * 5 + ["tie"] * 3 + ["both_bad"] * 2)
