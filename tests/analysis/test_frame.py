from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sbs.analysis.stats.frame import (
    COLUMNS,
    VoteFrameError,
    canonical_pair_labels,
    derive_outcomes,
    first_votes,
    outcome_for_a,
    pair_outcomes,
    vote_frame,
)

from .conftest import make_votes

BASE = {
    "question": "q1",
    "category": "math",
    "annotator": "ann",
    "model_a": "A",
    "model_b": "B",
    "left": "A",
    "choice": "left",
    "seconds": 3.0,
}


def test_vote_frame_columns_and_defaults() -> None:
    frame = vote_frame([BASE, {**BASE, "question": 7, "seconds": "4.5"}])
    assert list(frame.columns) == list(COLUMNS)
    assert frame["repeat"].tolist() == [False, False]
    assert frame["question"].tolist() == ["q1", "7"]
    assert frame["seconds"].tolist() == [3.0, 4.5]


@pytest.mark.parametrize(
    "change",
    [
        {"choice": "middle"},
        {"left": "C"},
        {"model_b": "A"},
        {"seconds": -1.0},
        {"annotator": None},
    ],
)
def test_vote_frame_rejects_bad_rows(change: dict[str, object]) -> None:
    with pytest.raises(VoteFrameError):
        vote_frame([BASE, {**BASE, **change}])


def test_vote_frame_rejects_missing_column() -> None:
    row = dict(BASE)
    del row["left"]
    with pytest.raises(VoteFrameError, match="left"):
        vote_frame([row])


@pytest.mark.parametrize(
    ("left", "choice", "expected"),
    [
        ("A", "left", "a"),
        ("A", "right", "b"),
        ("B", "left", "b"),
        ("B", "right", "a"),
        ("B", "tie", "tie"),
        ("A", "both_bad", "both_bad"),
    ],
)
def test_outcome_for_a(left: str, choice: str, expected: str) -> None:
    assert outcome_for_a("A", "B", left, choice) == expected
    frame = vote_frame([{**BASE, "left": left, "choice": choice}])
    assert derive_outcomes(frame).tolist() == [expected]


def test_outcome_invariant_when_sides_and_choice_swap_together() -> None:
    frame = make_votes(["a", "b", "tie", "both_bad"] * 10, seed=3)
    swapped = frame.copy()
    swapped["left"] = np.where(
        frame["left"] == frame["model_a"], frame["model_b"], frame["model_a"]
    )
    swapped["choice"] = frame["choice"].map(
        {"left": "right", "right": "left", "tie": "tie", "both_bad": "both_bad"}
    )
    swapped = vote_frame(swapped)
    assert (swapped["choice"] != frame["choice"]).sum() == 20  # the screen did change
    assert derive_outcomes(swapped).tolist() == derive_outcomes(frame).tolist()
    assert canonical_pair_labels(swapped)["label"].tolist() == (
        canonical_pair_labels(frame)["label"].tolist()
    )


def test_pair_outcomes_orients_to_the_chosen_model_whatever_the_storage_order() -> None:
    frame = make_votes(["a", "a", "b", "tie"], model_a="X", model_b="Y", seed=1)
    stored_other_way = frame.rename(columns={"model_a": "model_b", "model_b": "model_a"})
    stored_other_way = vote_frame(stored_other_way)
    for data in (frame, stored_other_way):
        assert pair_outcomes(data, "X", "Y")["outcome"].tolist() == ["a", "a", "b", "tie"]
        assert pair_outcomes(data, "Y", "X")["outcome"].tolist() == ["b", "b", "a", "tie"]
    assert derive_outcomes(stored_other_way).tolist() == ["b", "b", "a", "tie"]


def test_pair_outcomes_ignores_other_pairs() -> None:
    frame = pd.concat(
        [
            make_votes(["a", "b"], model_a="X", model_b="Y"),
            make_votes(["a"], model_a="X", model_b="Z"),
        ]
    )
    rows = pair_outcomes(vote_frame(frame), "X", "Y")
    assert len(rows) == 2


def test_first_votes_drops_repeats() -> None:
    frame = vote_frame([BASE, {**BASE, "repeat": True, "left": "B", "choice": "right"}])
    assert len(first_votes(frame)) == 1
    assert len(first_votes(frame, include_repeats=True)) == 2
