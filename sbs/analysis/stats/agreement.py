"""Inter-annotator agreement and per-annotator quality signals.

Labels are in model space (:func:`frame.canonical_pair_labels`): an item is a question
together with its (alphabetically ordered) model pair, and a label is ``a`` / ``b`` /
``tie`` / ``both_bad`` relative to that order, so screen sides never matter. Only each
annotator's first non-repeat vote on an item enters the agreement statistics; repeated
pairs (``repeat=True``) are used for self-consistency only.

* Fleiss' kappa (statsmodels ``fleiss_kappa``): κ = (P̄ − P̄e) / (1 − P̄e). It assumes the
  same number of ratings per item, so it is computed on the items that have the most
  common number (≥ 2) of ratings; ``fleiss_items`` says how many.
* Krippendorff's alpha, nominal (``krippendorff`` package): α = 1 − D_o / D_e, using all
  items with missing ratings allowed.
* Mean pairwise Cohen's kappa (statsmodels ``cohens_kappa``) over annotator pairs that
  share at least ``min_shared`` items; pairs with undefined kappa are skipped.
* Raw pairwise agreement: agreeing rating pairs / all rating pairs within items.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import krippendorff
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import binomtest
from statsmodels.stats.inter_rater import cohens_kappa as _sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as _sm_fleiss_kappa

from sbs.analysis.stats._plain import opt_float, plain
from sbs.analysis.stats.frame import OUTCOMES, canonical_pair_labels
from sbs.analysis.stats.verdict import wilson_interval


def fleiss_kappa(table: npt.ArrayLike) -> float | None:
    """Fleiss' kappa of an items x categories count table (equal ratings per item)."""
    counts = np.asarray(table, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0:
        return None
    per_item = counts.sum(axis=1)
    if per_item.min() < 2 or not np.all(per_item == per_item[0]):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings per item")
    with np.errstate(invalid="ignore", divide="ignore"):
        return opt_float(_sm_fleiss_kappa(counts, method="fleiss"))


def krippendorff_alpha_nominal(reliability: npt.ArrayLike) -> float | None:
    """Nominal Krippendorff's alpha of a raters x units matrix of integer codes (NaN = missing).

    None when fewer than two distinct values or no unit has two ratings.
    """
    data = np.asarray(reliability, dtype=float)
    values = data[~np.isnan(data)]
    pairable = (np.sum(~np.isnan(data), axis=0) >= 2).any() if data.size else False
    if np.unique(values).size < 2 or not pairable:
        return None
    return opt_float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def cohens_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items (statsmodels); None if undefined."""
    if len(first) != len(second) or len(first) == 0:
        raise ValueError("need two equally long, non-empty label sequences")
    labels = sorted(set(first) | set(second))
    index = {lab: k for k, lab in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)))
    for x, y in zip(first, second, strict=True):
        table[index[x], index[y]] += 1
    row, col = table.sum(axis=1), table.sum(axis=0)
    expected = float((row * col).sum()) / table.sum() ** 2
    if math.isclose(expected, 1.0):
        return None
    return opt_float(_sm_cohens_kappa(table, return_results=False))


def first_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (annotator, item): the first non-repeat vote, label in model space."""
    labelled = canonical_pair_labels(frame)
    table = pd.DataFrame(
        {
            "annotator": frame["annotator"].to_numpy(dtype=object),
            "item": labelled["item"].to_numpy(dtype=object),
            "label": labelled["label"].to_numpy(dtype=object),
            "repeat": frame["repeat"].to_numpy(dtype=bool),
        }
    )
    first = table.loc[~table["repeat"]].drop_duplicates(["annotator", "item"], keep="first")
    return first[["annotator", "item", "label"]].reset_index(drop=True)


@dataclass(frozen=True)
class AgreementReport:
    """Agreement over items rated by several annotators (see the module docstring)."""

    n_items: int
    n_items_multi: int  # items with >= 2 ratings
    n_annotators: int
    fleiss_kappa: float | None
    fleiss_items: int
    fleiss_ratings_per_item: int | None
    krippendorff_alpha: float | None
    mean_pairwise_cohen_kappa: float | None
    cohen_pairs: int
    raw_pairwise_agreement: float | None
    rating_pairs: int

    def to_dict(self) -> dict[str, Any]:
        return plain(self)  # type: ignore[no-any-return]


def agreement(frame: pd.DataFrame, *, min_shared: int = 2) -> AgreementReport:
    """Fleiss' kappa, Krippendorff's alpha, mean pairwise Cohen's kappa and raw agreement."""
    first = first_labels(frame)
    counts = pd.crosstab(first["item"], first["label"]).reindex(columns=list(OUTCOMES))
    counts = counts.fillna(0).astype(int)
    per_item = counts.sum(axis=1)
    multi = counts.loc[per_item >= 2]

    fleiss: float | None = None
    fleiss_n: int | None = None
    fleiss_items = 0
    if len(multi):
        sizes = multi.sum(axis=1).value_counts()
        fleiss_n = int(max(sizes.index[sizes == sizes.max()]))
        chosen = multi.loc[multi.sum(axis=1) == fleiss_n]
        fleiss_items = len(chosen)
        fleiss = fleiss_kappa(chosen.to_numpy())

    code = {lab: k for k, lab in enumerate(OUTCOMES)}
    wide = first.pivot(index="annotator", columns="item", values="label")
    reliability = wide.apply(lambda col: col.map(code)).to_numpy(dtype=float)
    alpha = krippendorff_alpha_nominal(reliability)

    kappas: list[float] = []
    for x, y in itertools.combinations(wide.index, 2):
        both = wide.loc[[x, y]].dropna(axis=1)
        if both.shape[1] >= min_shared:
            k = cohens_kappa(list(both.loc[x]), list(both.loc[y]))
            if k is not None:
                kappas.append(k)

    m = multi.to_numpy(dtype=float)
    n = m.sum(axis=1)
    pairs = float((n * (n - 1) / 2).sum())
    agreeing = float((m * (m - 1) / 2).sum())
    return AgreementReport(
        n_items=len(counts),
        n_items_multi=len(multi),
        n_annotators=int(first["annotator"].nunique()),
        fleiss_kappa=fleiss,
        fleiss_items=fleiss_items,
        fleiss_ratings_per_item=fleiss_n,
        krippendorff_alpha=alpha,
        mean_pairwise_cohen_kappa=float(np.mean(kappas)) if kappas else None,
        cohen_pairs=len(kappas),
        raw_pairwise_agreement=agreeing / pairs if pairs else None,
        rating_pairs=int(pairs),
    )


@dataclass(frozen=True)
class AnnotatorStats:
    """Quality signals for one annotator.

    Position bias: left-choice rate = left / (left + right) on decisive votes (screen
    space), Wilson interval, exact two-sided binomial test against 0.5.
    Leave-one-out agreement: share of the annotator's first votes on items with other
    ratings that match the others' unique plurality label (items where the others tie
    are skipped). Self-consistency: repeated pairs where the repeat (sides swapped) got
    the same model-space label as the first vote; ``repeat_decisive_*`` counts pairs
    decisive both times and whether the same model was preferred.
    """

    annotator: str
    n_votes: int
    median_seconds: float | None
    left_choices: int
    right_choices: int
    left_rate: float | None
    left_rate_low: float | None
    left_rate_high: float | None
    position_bias_p: float | None
    loo_compared: int
    loo_agreement: float | None
    repeat_pairs: int
    repeat_consistent: int
    repeat_consistency: float | None
    repeat_decisive_pairs: int
    repeat_decisive_consistent: int

    def to_dict(self) -> dict[str, Any]:
        return plain(self)  # type: ignore[no-any-return]


def _loo(first: pd.DataFrame) -> pd.DataFrame:
    """Per first vote: whether it matches the unique plurality of the other ratings."""
    counts = pd.crosstab(first["item"], first["label"]).reindex(columns=list(OUTCOMES))
    counts = counts.fillna(0).astype(int)
    own = pd.get_dummies(first["label"]).reindex(columns=list(OUTCOMES), fill_value=0)
    others = counts.loc[first["item"]].to_numpy() - own.to_numpy(dtype=int)
    top = others.max(axis=1)
    unique = (others == top[:, None]).sum(axis=1) == 1
    usable = (others.sum(axis=1) > 0) & unique
    plurality = np.array(OUTCOMES, dtype=object)[others.argmax(axis=1)]
    return pd.DataFrame(
        {
            "annotator": first["annotator"].to_numpy(dtype=object),
            "usable": usable,
            "match": usable & (plurality == first["label"].to_numpy(dtype=object)),
        }
    )


def annotator_stats(frame: pd.DataFrame) -> tuple[AnnotatorStats, ...]:
    """Per-annotator vote count, speed, position bias, LOO agreement and self-consistency."""
    labelled = canonical_pair_labels(frame)
    votes = pd.DataFrame(
        {
            "annotator": frame["annotator"].to_numpy(dtype=object),
            "item": labelled["item"].to_numpy(dtype=object),
            "label": labelled["label"].to_numpy(dtype=object),
            "choice": frame["choice"].to_numpy(dtype=object),
            "seconds": frame["seconds"].to_numpy(dtype=float),
            "repeat": frame["repeat"].to_numpy(dtype=bool),
        }
    )
    loo = _loo(first_labels(frame)).groupby("annotator")[["usable", "match"]].sum()
    originals = votes.loc[~votes["repeat"]].drop_duplicates(["annotator", "item"])
    repeats = votes.loc[votes["repeat"]].drop_duplicates(["annotator", "item"])
    paired = originals.merge(repeats, on=["annotator", "item"], suffixes=("", "_repeat"))
    paired["same"] = paired["label"] == paired["label_repeat"]
    paired["decisive"] = paired["label"].isin(["a", "b"]) & paired["label_repeat"].isin(["a", "b"])

    out = []
    for annotator, group in votes.groupby("annotator", sort=True):
        left = int((group["choice"] == "left").sum())
        right = int((group["choice"] == "right").sum())
        decisive = left + right
        low, high = wilson_interval(left, decisive)
        p_value = (
            float(binomtest(left, decisive, 0.5, alternative="two-sided").pvalue)
            if decisive
            else None
        )
        compared = int(loo.at[annotator, "usable"]) if annotator in loo.index else 0
        matched = int(loo.at[annotator, "match"]) if annotator in loo.index else 0
        rep = paired.loc[paired["annotator"] == annotator]
        consistent = int(rep["same"].sum())
        rep_decisive = rep.loc[rep["decisive"]]
        seconds = group["seconds"].dropna()
        out.append(
            AnnotatorStats(
                annotator=str(annotator),
                n_votes=len(group),
                median_seconds=float(seconds.median()) if len(seconds) else None,
                left_choices=left,
                right_choices=right,
                left_rate=left / decisive if decisive else None,
                left_rate_low=low,
                left_rate_high=high,
                position_bias_p=p_value,
                loo_compared=compared,
                loo_agreement=matched / compared if compared else None,
                repeat_pairs=len(rep),
                repeat_consistent=consistent,
                repeat_consistency=consistent / len(rep) if len(rep) else None,
                repeat_decisive_pairs=len(rep_decisive),
                repeat_decisive_consistent=int(rep_decisive["same"].sum()),
            )
        )
    return tuple(out)
