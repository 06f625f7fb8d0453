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
* Mean pairwise Cohen's kappa over annotator pairs that share at least ``min_shared``
  items; pairs with undefined kappa are skipped. Computed for all pairs at once from
  sparse one-hot label matrices (:func:`pairwise_cohen_kappas`); :func:`cohens_kappa`
  (statsmodels) is the one-pair reference it is tested against.
* Raw pairwise agreement: agreeing rating pairs / all rating pairs within items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import krippendorff
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse
from scipy.stats import binom
from statsmodels.stats.inter_rater import cohens_kappa as _sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as _sm_fleiss_kappa

from sbs.analysis.stats._plain import opt_float, plain
from sbs.analysis.stats.frame import OUTCOMES, canonical_pair_labels
from sbs.analysis.stats.multiplicity import benjamini_hochberg
from sbs.analysis.stats.verdict import sign_tests, wilson_intervals


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
    with np.errstate(invalid="ignore", divide="ignore"):
        value = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    return opt_float(value)


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


def _label_codes(first: pd.DataFrame) -> tuple[npt.NDArray[np.intp], ...]:
    """Integer codes of (annotator, item, label) of :func:`first_labels` rows; annotators sorted."""
    annotators = pd.factorize(first["annotator"], sort=True)[0]
    items = pd.factorize(first["item"], sort=True)[0]
    labels = pd.Categorical(first["label"], categories=list(OUTCOMES)).codes
    return annotators.astype(np.intp), items.astype(np.intp), labels.astype(np.intp)


def _at(matrix: sparse.csr_matrix, rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp]) -> Any:
    """Entries ``matrix[rows[p], cols[p]]`` as a flat float array."""
    return np.asarray(matrix[rows, cols], dtype=float).ravel()


def pairwise_cohen_kappas(first: pd.DataFrame, *, min_shared: int = 2) -> npt.NDArray[np.float64]:
    """Cohen's kappa of every annotator pair sharing ≥ ``min_shared`` items, without a pair loop.

    With the one-hot matrices X_k (annotators x items; 1 where the annotator gave label k)
    and M = Σ_k X_k (1 where the annotator rated the item), for annotators x, y:
    n = (M Mᵀ)[x, y] shared items; p_o = Σ_k (X_k X_kᵀ)[x, y] / n; the marginals on the
    shared items are r_k = (X_k Mᵀ)[x, y] and c_k = (X_k Mᵀ)[y, x], so
    p_e = Σ_k r_k c_k / n² and κ = (p_o − p_e) / (1 − p_e) — the same table statsmodels'
    ``cohens_kappa`` builds per pair. Pairs with p_e = 1 (both gave one same label
    throughout) have no kappa and are left out. Sparse products: the cost grows with the
    co-rated (item, annotator, annotator) triples, not with the number of pairs squared.
    Returns the kappas of pairs x < y in row-major order of the sorted annotator ids.
    """
    if first.empty:
        return np.empty(0)
    ann, item, label = _label_codes(first)
    n_ann, n_items, n_labels = int(ann.max()) + 1, int(item.max()) + 1, len(OUTCOMES)
    ones = np.ones(len(ann))
    rated = sparse.csr_matrix((ones, (ann, item)), shape=(n_ann, n_items))
    shared = (rated @ rated.T).tocoo()
    keep = (shared.row < shared.col) & (shared.data >= min_shared)
    order = np.lexsort((shared.col[keep], shared.row[keep]))
    rows = shared.row[keep][order].astype(np.intp)
    cols = shared.col[keep][order].astype(np.intp)
    n = shared.data[keep][order].astype(float)
    if n.size == 0:
        return np.empty(0)
    onehot = sparse.csr_matrix(
        (ones, (ann, item * n_labels + label)), shape=(n_ann, n_items * n_labels)
    )
    agree = _at((onehot @ onehot.T).tocsr(), rows, cols)
    chance = np.zeros_like(n)
    for k in range(n_labels):
        mine = label == k
        x_k = sparse.csr_matrix((ones[mine], (ann[mine], item[mine])), shape=(n_ann, n_items))
        marginal = (x_k @ rated.T).tocsr()
        chance += _at(marginal, rows, cols) * _at(marginal, cols, rows)
    p_o = agree / n
    p_e = chance / (n * n)
    defined = ~np.isclose(p_e, 1.0, rtol=1e-9, atol=0.0)
    kappa = (p_o[defined] - p_e[defined]) / (1.0 - p_e[defined])
    return np.asarray(kappa[np.isfinite(kappa)], dtype=np.float64)


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

    alpha = None
    if len(first):
        ann, item, label = _label_codes(first)
        reliability = np.full((int(ann.max()) + 1, int(item.max()) + 1), np.nan)
        reliability[ann, item] = label
        alpha = krippendorff_alpha_nominal(reliability)

    kappas = pairwise_cohen_kappas(first, min_shared=min_shared)

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
        mean_pairwise_cohen_kappa=opt_float(kappas.mean()) if kappas.size else None,
        cohen_pairs=int(kappas.size),
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
    are skipped); ``loo_expected`` is the same share pooled over every other annotator,
    and ``loo_p`` the exact one-sided binomial test of fewer matches than that rate.
    Self-consistency: repeated pairs where the repeat (sides swapped) got the same
    model-space label as the first vote; ``repeat_decisive_*`` counts pairs decisive both
    times and whether the same model was preferred.

    ``*_p`` are the raw p-values, ``*_p_adjusted`` the Benjamini–Hochberg ones across
    the annotators of the report, and the ``*_flag`` fields say adjusted p < alpha (see
    :func:`annotator_stats` for why BH).
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
    position_bias_p_adjusted: float | None
    position_bias_flag: bool
    loo_compared: int
    loo_agreement: float | None
    loo_expected: float | None
    loo_p: float | None
    loo_p_adjusted: float | None
    loo_flag: bool
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
    top = others.max(axis=1) if len(others) else np.zeros(0, dtype=int)
    unique = (others == top[:, None]).sum(axis=1) == 1
    usable = (others.sum(axis=1) > 0) & unique
    plurality = np.array(OUTCOMES, dtype=object)[others.argmax(axis=1)] if len(others) else []
    return pd.DataFrame(
        {
            "annotator": first["annotator"].to_numpy(dtype=object),
            "usable": usable,
            "match": usable & (plurality == first["label"].to_numpy(dtype=object)),
        }
    )


def _below(p: float | None, alpha: float) -> bool:
    return p is not None and p < alpha


def _opt(values: npt.ArrayLike) -> list[float | None]:
    return [opt_float(v) for v in np.asarray(values, dtype=float)]


def annotator_stats(frame: pd.DataFrame, *, alpha: float = 0.05) -> tuple[AnnotatorStats, ...]:
    """Per-annotator vote count, speed, position bias, LOO agreement and self-consistency.

    Vectorised over annotators (group sums, array Wilson intervals and binomial tails), so a
    study with a thousand annotators costs milliseconds.

    Multiplicity: each flag is one test per annotator, hundreds of tests on a large study,
    so at alpha = 0.05 a few honest annotators would be flagged by chance alone. The p-values
    are therefore adjusted across the annotators with **Benjamini–Hochberg** (false
    discovery rate), not Holm (family-wise error rate): a flag here is a prompt for the
    researcher to look at an annotator's votes, not a conclusion of the study, so the
    quantity that matters is the share of false alarms among the flagged, and with hundreds
    of annotators Holm's family-wise control leaves almost no power to flag anyone. BH's
    guarantee holds for independent tests (the position-bias tests use disjoint votes) and
    for positively dependent ones (the agreement tests share the others' plurality). The
    raw and the adjusted p-values are both reported.
    """
    if frame.empty:
        return ()
    labelled = canonical_pair_labels(frame)
    codes, names = pd.factorize(frame["annotator"].to_numpy(dtype=object), sort=True)
    n_ann = len(names)
    choice = frame["choice"].to_numpy(dtype=object)

    def per_annotator(mask: npt.ArrayLike) -> npt.NDArray[np.int64]:
        weights = np.asarray(mask, dtype=float)
        return np.bincount(codes, weights=weights, minlength=n_ann).round().astype(np.int64)

    n_votes = np.bincount(codes, minlength=n_ann)
    left = per_annotator(choice == "left")
    right = per_annotator(choice == "right")
    decisive = left + right
    low, high = wilson_intervals(left, decisive)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(decisive > 0, left / np.maximum(decisive, 1), np.nan)
    bias_p = sign_tests(left, decisive)
    seconds = pd.Series(frame["seconds"].to_numpy(dtype=float)).groupby(codes).median()
    median_seconds = seconds.reindex(range(n_ann)).to_numpy(dtype=float)

    first = first_labels(frame)
    loo = _loo(first)
    loo_codes = pd.Categorical(loo["annotator"], categories=names).codes
    compared = np.bincount(loo_codes, weights=loo["usable"].to_numpy(float), minlength=n_ann)
    matched = np.bincount(loo_codes, weights=loo["match"].to_numpy(float), minlength=n_ann)
    compared, matched = compared.round().astype(np.int64), matched.round().astype(np.int64)
    others_compared = compared.sum() - compared
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.where(
            others_compared > 0, (matched.sum() - matched) / np.maximum(others_compared, 1), np.nan
        )
        loo_rate = np.where(compared > 0, matched / np.maximum(compared, 1), np.nan)
    testable = (compared > 0) & np.isfinite(expected)
    loo_p = np.where(
        testable, binom.cdf(matched, compared, np.where(testable, expected, 0.5)), np.nan
    )

    votes = pd.DataFrame(
        {
            "annotator": codes,
            "item": labelled["item"].to_numpy(dtype=object),
            "label": labelled["label"].to_numpy(dtype=object),
            "repeat": frame["repeat"].to_numpy(dtype=bool),
        }
    )
    originals = votes.loc[~votes["repeat"]].drop_duplicates(["annotator", "item"])
    repeats = votes.loc[votes["repeat"]].drop_duplicates(["annotator", "item"])
    paired = originals.merge(repeats, on=["annotator", "item"], suffixes=("", "_repeat"))
    same = (paired["label"] == paired["label_repeat"]).to_numpy(dtype=bool)
    both_decisive = (
        paired["label"].isin(["a", "b"]) & paired["label_repeat"].isin(["a", "b"])
    ).to_numpy(dtype=bool)
    pair_codes = paired["annotator"].to_numpy(dtype=np.intp)
    rep_pairs = np.bincount(pair_codes, minlength=n_ann)
    rep_same = np.bincount(pair_codes, weights=same.astype(float), minlength=n_ann)
    rep_dec = np.bincount(pair_codes, weights=both_decisive.astype(float), minlength=n_ann)
    rep_dec_same = np.bincount(
        pair_codes, weights=(same & both_decisive).astype(float), minlength=n_ann
    )
    rep_same, rep_dec = rep_same.round().astype(np.int64), rep_dec.round().astype(np.int64)
    rep_dec_same = rep_dec_same.round().astype(np.int64)

    raw_bias, raw_loo = _opt(bias_p), _opt(loo_p)
    adj_bias, adj_loo = benjamini_hochberg(raw_bias), benjamini_hochberg(raw_loo)
    lows, highs, rates = _opt(low), _opt(high), _opt(rate)
    medians, expects, loo_rates = _opt(median_seconds), _opt(expected), _opt(loo_rate)
    return tuple(
        AnnotatorStats(
            annotator=str(names[k]),
            n_votes=int(n_votes[k]),
            median_seconds=medians[k],
            left_choices=int(left[k]),
            right_choices=int(right[k]),
            left_rate=rates[k],
            left_rate_low=lows[k],
            left_rate_high=highs[k],
            position_bias_p=raw_bias[k],
            position_bias_p_adjusted=adj_bias[k],
            position_bias_flag=_below(adj_bias[k], alpha),
            loo_compared=int(compared[k]),
            loo_agreement=loo_rates[k],
            loo_expected=expects[k],
            loo_p=raw_loo[k],
            loo_p_adjusted=adj_loo[k],
            loo_flag=_below(adj_loo[k], alpha),
            repeat_pairs=int(rep_pairs[k]),
            repeat_consistent=int(rep_same[k]),
            repeat_consistency=rep_same[k] / rep_pairs[k] if rep_pairs[k] else None,
            repeat_decisive_pairs=int(rep_dec[k]),
            repeat_decisive_consistent=int(rep_dec_same[k]),
        )
        for k in range(n_ann)
    )
