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


def crowd_frame(
    n_random: int,
    *,
    n_questions: int = 78,
    random_votes: int = 11,
    total_votes: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """A large study: three consistent annotators and ``n_random`` voting at random.

    ``careful-1`` and ``careful-2`` vote on every question and prefer the adapted model on
    80 % of them (the same questions); ``lefty`` votes on every question and always
    clicks the left answer. Each random annotator judges ``random_votes`` distinct
    questions with a uniformly random button, or, with ``total_votes``, as many as make
    that total (spread evenly). Screen sides are random. ``crowd_frame(265,
    total_votes=3170)`` is the study of issue 8: 268 annotators, 3,170 votes.
    """
    rng = np.random.default_rng(seed)
    per_random = [random_votes] * n_random
    if total_votes is not None:
        spare = total_votes - 3 * n_questions
        per_random = [spare // n_random + (k < spare % n_random) for k in range(n_random)]
    prefers_adapted = rng.random(n_questions) < 0.8
    rows: list[dict[str, object]] = []

    def vote(annotator: str, q: int, choice: str | None = None, winner: str | None = None) -> None:
        left = "adapted" if rng.random() < 0.5 else "original"
        if choice is None:
            choice = "left" if winner == left else "right"
        rows.append(
            {"question": f"q{q:02d}", "category": f"cat{q % 4}", "annotator": annotator,
             "model_a": "original", "model_b": "adapted", "left": left, "choice": choice,
             "seconds": float(rng.integers(3, 90))}
        )  # fmt: skip

    for name in ("careful-1", "careful-2"):
        for q in range(n_questions):
            vote(name, q, winner="adapted" if prefers_adapted[q] else "original")
    for q in range(n_questions):
        vote("lefty", q, choice="left")
    choices = ["left", "right", "tie", "both_bad"]
    for k in range(n_random):
        for q in rng.choice(n_questions, size=min(per_random[k], n_questions), replace=False):
            vote(f"random-{k:04d}", int(q), choice=choices[rng.integers(0, 4)])
    return vote_frame(rows)
