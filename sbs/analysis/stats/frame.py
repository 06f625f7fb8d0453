"""The canonical vote frame and the derivation of outcomes in model space.

A vote frame is a :class:`pandas.DataFrame` with one row per vote and the columns

==========  =====  ==============================================================
column      type   meaning
==========  =====  ==============================================================
question    str    question id
category    str    question category
annotator   str    annotator id
model_a     str    first model of the compared pair (storage order, not screen)
model_b     str    second model of the pair (``model_b != model_a``)
left        str    which of the two models was shown on the left (model_a or model_b)
choice      str    ``"left"``, ``"right"``, ``"tie"`` or ``"both_bad"`` (screen space)
seconds     float  time on the page (NaN when unknown, never negative)
repeat      bool   optional (default False): a repeated pair shown with sides swapped
==========  =====  ==============================================================

Screen positions are never analysed directly: :func:`derive_outcomes` turns
``left``/``choice`` into the outcome from model_a's point of view
(``"a"``, ``"b"``, ``"tie"``, ``"both_bad"``), and :func:`pair_outcomes`
re-orients the votes of one model pair towards a chosen model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

Choice = Literal["left", "right", "tie", "both_bad"]
Outcome = Literal["a", "b", "tie", "both_bad"]

CHOICES: Final[tuple[str, ...]] = ("left", "right", "tie", "both_bad")
OUTCOMES: Final[tuple[str, ...]] = ("a", "b", "tie", "both_bad")
STRING_COLUMNS: Final[tuple[str, ...]] = (
    "question",
    "category",
    "annotator",
    "model_a",
    "model_b",
    "left",
    "choice",
)
REQUIRED_COLUMNS: Final[tuple[str, ...]] = (*STRING_COLUMNS, "seconds")
COLUMNS: Final[tuple[str, ...]] = (*REQUIRED_COLUMNS, "repeat")


class VoteFrameError(ValueError):
    """Raised when data does not satisfy the vote frame contract."""


def vote_frame(data: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Validate ``data`` and return a new canonical vote frame.

    Accepts a DataFrame or an iterable of mappings (e.g. dicts from a query).
    Extra columns are kept after the canonical ones; ``repeat`` defaults to False (also where missing).
    Raises :class:`VoteFrameError` on a missing column, a null id, an unknown
    choice, ``model_a == model_b``, a ``left`` outside the pair or negative seconds.
    """
    df = data.copy() if isinstance(data, pd.DataFrame) else pd.DataFrame(list(data))
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise VoteFrameError(f"missing columns: {', '.join(missing)}")
    if "repeat" not in df.columns:
        df["repeat"] = False
    df = df.reset_index(drop=True)
    for col in STRING_COLUMNS:
        if df[col].isna().any():
            raise VoteFrameError(f"column {col!r} has missing values")
        df[col] = df[col].astype(str)
    bad_choice = ~df["choice"].isin(CHOICES)
    if bad_choice.any():
        values = sorted(set(df.loc[bad_choice, "choice"]))
        raise VoteFrameError(f"unknown choice values: {values}")
    if (df["model_a"] == df["model_b"]).any():
        raise VoteFrameError("model_a equals model_b in some rows")
    if (~((df["left"] == df["model_a"]) | (df["left"] == df["model_b"]))).any():
        raise VoteFrameError("left is neither model_a nor model_b in some rows")
    try:
        seconds = pd.to_numeric(df["seconds"], errors="raise").astype(float)
    except (TypeError, ValueError) as exc:
        raise VoteFrameError(f"seconds is not numeric: {exc}") from exc
    if (seconds < 0).any():
        raise VoteFrameError("seconds has negative values")
    df["seconds"] = seconds
    repeat = df["repeat"].astype(object).where(df["repeat"].notna(), False)
    if not repeat.map(lambda v: isinstance(v, bool | np.bool_) or v in (0, 1)).all():
        raise VoteFrameError("column 'repeat' must hold booleans")
    df["repeat"] = repeat.astype(bool)
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[[*COLUMNS, *extra]]


def outcome_for_a(model_a: str, model_b: str, left: str, choice: str) -> Outcome:
    """Outcome of one vote from model_a's point of view (scalar form of :func:`derive_outcomes`)."""
    if left not in (model_a, model_b):
        raise VoteFrameError(f"left {left!r} is neither {model_a!r} nor {model_b!r}")
    if choice == "tie":
        return "tie"
    if choice == "both_bad":
        return "both_bad"
    if choice not in ("left", "right"):
        raise VoteFrameError(f"unknown choice {choice!r}")
    a_on_left = left == model_a
    return "a" if (choice == "left") == a_on_left else "b"


def derive_outcomes(frame: pd.DataFrame) -> pd.Series:
    """Vectorised outcome per vote from model_a's view: a / b / tie / both_bad.

    ``a`` iff (choice == left and left == model_a) or (choice == right and left == model_b).
    """
    a_on_left = (frame["left"] == frame["model_a"]).to_numpy()
    choice = frame["choice"].to_numpy(dtype=object)
    picked_left = choice == "left"
    picked_right = choice == "right"
    out = np.where(choice == "tie", "tie", "both_bad").astype(object)
    out[(picked_left & a_on_left) | (picked_right & ~a_on_left)] = "a"
    out[(picked_left & ~a_on_left) | (picked_right & a_on_left)] = "b"
    return pd.Series(out, index=frame.index, name="outcome", dtype=object)


def with_outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``frame`` with an ``outcome`` column (model_a's view) added."""
    out = frame.copy()
    out["outcome"] = derive_outcomes(frame)
    return out


def pair_outcomes(frame: pd.DataFrame, model: str, opponent: str) -> pd.DataFrame:
    """Votes of the pair {model, opponent} with ``outcome`` re-oriented to ``model``.

    Returns a copy of those rows where ``outcome`` is ``"a"`` when ``model`` won,
    ``"b"`` when ``opponent`` won, else ``"tie"`` / ``"both_bad"``; rows are kept
    whichever of the two models is stored as model_a.
    """
    if model == opponent:
        raise ValueError("model and opponent must differ")
    direct = (frame["model_a"] == model) & (frame["model_b"] == opponent)
    swapped = (frame["model_a"] == opponent) & (frame["model_b"] == model)
    rows = frame.loc[direct | swapped].copy()
    outcome = derive_outcomes(rows).to_numpy(dtype=object)
    flip = swapped.loc[rows.index].to_numpy()
    flipped = outcome.copy()
    flipped[flip & (outcome == "a")] = "b"
    flipped[flip & (outcome == "b")] = "a"
    rows["outcome"] = pd.Series(flipped, index=rows.index, dtype=object)
    return rows


def first_votes(frame: pd.DataFrame, include_repeats: bool = False) -> pd.DataFrame:
    """The votes that count for verdicts and ratings: repeat votes dropped unless asked.

    A repeat is the same annotator judging the same pair again (sides swapped) for
    quality control; counting it would weigh that annotator's opinion twice.
    """
    if include_repeats:
        return frame
    return frame.loc[~frame["repeat"].to_numpy(dtype=bool)]


def models_in(frame: pd.DataFrame) -> list[str]:
    """Sorted list of the models that appear in ``frame``."""
    return sorted(set(frame["model_a"]).union(frame["model_b"]))


def canonical_pair_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Per vote: ``item`` (question + sorted model pair) and ``label`` in model space.

    The pair is ordered alphabetically so the label ``"a"`` always means the
    alphabetically first model of the pair, whatever the storage or screen order.
    Used by the agreement statistics so that sides never matter.
    """
    first = np.where(frame["model_a"] < frame["model_b"], frame["model_a"], frame["model_b"])
    second = np.where(frame["model_a"] < frame["model_b"], frame["model_b"], frame["model_a"])
    outcome = derive_outcomes(frame).to_numpy(dtype=object)
    swapped = (frame["model_a"] != first).to_numpy()
    label = outcome.copy()
    label[swapped & (outcome == "a")] = "b"
    label[swapped & (outcome == "b")] = "a"
    item = frame["question"].astype(str) + "\x1f" + pd.Series(first, index=frame.index).astype(str)
    item = item + "\x1f" + pd.Series(second, index=frame.index).astype(str)
    return pd.DataFrame(
        {"item": item.to_numpy(dtype=object), "label": label},
        index=frame.index,
    )
