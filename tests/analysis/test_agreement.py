from __future__ import annotations

import itertools
import json
import math
import time
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from sbs.analysis.stats.agreement import (
    agreement,
    annotator_stats,
    cohens_kappa,
    first_labels,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    pairwise_cohen_kappas,
)
from sbs.analysis.stats.frame import vote_frame

from .conftest import crowd_frame

# Wikipedia "Fleiss' kappa" worked example: 10 subjects, 14 raters, 5 categories.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", nominal example:
# 4 observers x 12 units with missing values; alpha = 0.743.
KRIPPENDORFF_DATA = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]


def test_fleiss_kappa_wikipedia_example() -> None:
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.210, abs=5e-4)
    # Hand check of the same number: P̄ = 0.378, P̄e = 0.213.
    t = np.array(FLEISS_TABLE, dtype=float)
    p_bar = ((t * (t - 1)).sum(axis=1) / (14 * 13)).mean()
    pe = ((t.sum(axis=0) / t.sum()) ** 2).sum()
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx((p_bar - pe) / (1 - pe))


def test_krippendorff_alpha_textbook_example() -> None:
    assert krippendorff_alpha_nominal(KRIPPENDORFF_DATA) == pytest.approx(0.743, abs=5e-4)


def test_cohens_kappa_hand_example() -> None:
    # 2x2 table [[20, 5], [10, 15]]: po = 0.7, pe = 0.5 -> kappa = 0.4.
    first = ["x"] * 25 + ["y"] * 25
    second = ["x"] * 20 + ["y"] * 5 + ["x"] * 10 + ["y"] * 15
    assert cohens_kappa(first, second) == pytest.approx(0.4)
    assert cohens_kappa(["x", "x"], ["x", "x"]) is None


def _rows(labels: dict[str, list[str]], seed: int = 0) -> list[dict[str, object]]:
    """labels[annotator][item] in model space (a = model 'alpha' won); random screen sides."""
    rng = np.random.default_rng(seed)
    rows = []
    for annotator, per_item in labels.items():
        for k, label in enumerate(per_item):
            if label == "-":
                continue
            left = "alpha" if rng.random() < 0.5 else "beta"
            if label in ("tie", "both_bad"):
                choice = label
            else:
                winner = "alpha" if label == "a" else "beta"
                choice = "left" if winner == left else "right"
            rows.append({"question": f"q{k}", "category": "c", "annotator": annotator,
                         "model_a": "beta", "model_b": "alpha", "left": left,
                         "choice": choice, "seconds": 2.0 + k})  # fmt: skip
    return rows


def test_agreement_on_a_frame_matches_the_primitives() -> None:
    labels = {
        "u1": ["a", "a", "b", "tie", "a", "b", "both_bad", "a"],
        "u2": ["a", "b", "b", "tie", "a", "b", "a", "-"],
        "u3": ["a", "a", "b", "a", "-", "b", "both_bad", "a"],
    }
    frame = vote_frame(_rows(labels))
    report = agreement(frame)
    code = {"a": 0, "b": 1, "tie": 2, "both_bad": 3, "-": NAN}
    matrix = [[code[x] for x in labels[u]] for u in ("u1", "u2", "u3")]
    assert report.krippendorff_alpha == pytest.approx(krippendorff_alpha_nominal(matrix))
    full = [k for k in range(8) if all(labels[u][k] != "-" for u in labels)]
    table = [
        [sum(labels[u][k] == lab for u in labels) for lab in ("a", "b", "tie", "both_bad")]
        for k in full
    ]
    assert report.fleiss_items == 6 and report.fleiss_ratings_per_item == 3
    assert report.fleiss_kappa == pytest.approx(fleiss_kappa(table))
    pairs = [("u1", "u2"), ("u1", "u3"), ("u2", "u3")]
    kappas = []
    for x, y in pairs:
        shared = [k for k in range(8) if labels[x][k] != "-" and labels[y][k] != "-"]
        kappas.append(cohens_kappa([labels[x][k] for k in shared], [labels[y][k] for k in shared]))
    assert report.mean_pairwise_cohen_kappa == pytest.approx(np.mean(kappas))
    agree = total = 0
    for k in range(8):
        present = [labels[u][k] for u in labels if labels[u][k] != "-"]
        for i in range(len(present)):
            for j in range(i + 1, len(present)):
                total += 1
                agree += present[i] == present[j]
    assert report.raw_pairwise_agreement == pytest.approx(agree / total)
    json.dumps(report.to_dict())


def test_agreement_ignores_screen_sides_and_repeats() -> None:
    labels = {"u1": ["a", "b", "tie", "a"], "u2": ["a", "b", "tie", "b"]}
    one = agreement(vote_frame(_rows(labels, seed=1)))
    other = agreement(vote_frame(_rows(labels, seed=2)))
    assert one == other
    rows = _rows(labels, seed=1)
    rows.append({**rows[0], "repeat": True, "choice": "both_bad"})
    assert agreement(vote_frame(rows)) == one


def test_annotator_position_bias_loo_and_self_consistency() -> None:
    rows = []
    # u1 always clicks left; sides alternate, so u1's model-space labels alternate.
    for k in range(20):
        left = "alpha" if k % 2 == 0 else "beta"
        rows.append({"question": f"q{k}", "category": "c", "annotator": "u1", "model_a": "alpha",
                     "model_b": "beta", "left": left, "choice": "left", "seconds": float(k)})  # fmt: skip
        for other in ("u2", "u3"):
            rows.append({"question": f"q{k}", "category": "c", "annotator": other,
                         "model_a": "alpha", "model_b": "beta", "left": "alpha",
                         "choice": "left", "seconds": 3.0})  # fmt: skip
    # Repeats with sides swapped: u2 consistent twice, inconsistent once; u1 one tie repeat.
    rows.append(
        {**rows[1], "repeat": True, "left": "beta", "choice": "right"}
    )  # u2 q0: alpha again
    rows.append(
        {**rows[4], "repeat": True, "left": "beta", "choice": "right"}
    )  # u2 q1: alpha again
    rows.append({**rows[7], "repeat": True, "left": "beta", "choice": "left"})  # u2 q2: beta now
    rows.append({**rows[0], "repeat": True, "left": "beta", "choice": "tie"})  # u1 q0: tie now
    stats = {s.annotator: s for s in annotator_stats(vote_frame(rows))}
    u1, u2 = stats["u1"], stats["u2"]
    assert u1.n_votes == 21 and u1.median_seconds == pytest.approx(9.0)  # 0, 0, 1, ..., 19
    assert (u1.left_choices, u1.right_choices) == (20, 0)
    assert u1.left_rate == 1.0
    assert u1.position_bias_p == pytest.approx(2 * 0.5**20)
    assert u1.left_rate_high == 1.0 and u1.left_rate_low == pytest.approx(0.8389, abs=1e-3)
    # u1 agrees with the unanimous others on the 10 items where alpha was on the left.
    assert (u1.loo_compared, u1.loo_agreement) == (20, 0.5)
    # For u2 the others (u1, u3) tie on the 10 items where u1 disagrees: those are skipped.
    assert (u2.loo_compared, u2.loo_agreement) == (10, 1.0)
    assert (u2.repeat_pairs, u2.repeat_consistent, u2.repeat_decisive_pairs) == (3, 2, 3)
    assert u2.repeat_decisive_consistent == 2
    assert (u1.repeat_pairs, u1.repeat_consistent, u1.repeat_decisive_pairs) == (1, 0, 0)
    assert stats["u3"].repeat_consistency is None
    pd.DataFrame([s.to_dict() for s in stats.values()])


def _old_mean_pairwise_kappa(frame: pd.DataFrame, min_shared: int = 2) -> tuple[list[float], float]:
    """The per-pair implementation the report used before (one statsmodels call per pair)."""
    first = first_labels(frame)
    wide = first.pivot(index="annotator", columns="item", values="label")
    kappas = []
    for x, y in itertools.combinations(wide.index, 2):
        both = wide.loc[[x, y]].dropna(axis=1)
        if both.shape[1] >= min_shared:
            k = cohens_kappa(list(both.loc[x]), list(both.loc[y]))
            if k is not None:
                kappas.append(k)
    return kappas, float(np.mean(kappas))


def _hand_kappa(first: list[str], second: list[str]) -> float | None:
    """Cohen (1960) by hand: p_o = share of equal labels, p_e = Σ_k p_k(first) p_k(second)."""
    n = len(first)
    p_o = sum(x == y for x, y in zip(first, second, strict=True)) / n
    one, two = Counter(first), Counter(second)
    p_e = sum(one[k] * two[k] for k in one) / n**2
    return None if math.isclose(p_e, 1.0) else (p_o - p_e) / (1 - p_e)


def _random_label_frame(seed: int, annotators: int = 14, items: int = 25) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels: dict[str, list[str]] = {}
    for k in range(annotators):
        pool = ["a"] if k == 0 else ["a", "b", "tie", "both_bad"][: 1 + k % 4]  # some constant
        labels[f"u{k:02d}"] = [
            "-" if rng.random() < 0.4 else str(rng.choice(pool)) for _ in range(items)
        ]
    return vote_frame(_rows(labels, seed=seed))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_pairwise_kappa_equals_the_per_pair_computation(seed: int) -> None:
    frame = _random_label_frame(seed)
    old, old_mean = _old_mean_pairwise_kappa(frame)
    new = pairwise_cohen_kappas(first_labels(frame))
    np.testing.assert_allclose(new, old, rtol=0, atol=1e-12)  # pair by pair, same order
    report = agreement(frame)
    assert report.cohen_pairs == len(old)
    assert report.mean_pairwise_cohen_kappa == pytest.approx(old_mean, rel=0, abs=1e-12)
    # And against Cohen's formula by hand, without statsmodels.
    wide = first_labels(frame).pivot(index="annotator", columns="item", values="label")
    hand = []
    for x, y in itertools.combinations(wide.index, 2):
        both = wide.loc[[x, y]].dropna(axis=1)
        if both.shape[1] >= 2:
            k = _hand_kappa(list(both.loc[x]), list(both.loc[y]))
            if k is not None:
                hand.append(k)
    np.testing.assert_allclose(new, hand, rtol=0, atol=1e-12)


def test_agreement_of_300_annotators_takes_well_under_a_second() -> None:
    frame = crowd_frame(297, random_votes=12)  # 300 annotators, 44,850 pairs
    started = time.perf_counter()
    report = agreement(frame)
    seconds = time.perf_counter() - started
    assert report.n_annotators == 300 and report.cohen_pairs > 10_000
    assert seconds < 5.0  # measured ~0.05 s; the per-pair loop took ~100 s


def _hand_bh(pvalues: list[float]) -> list[float]:
    """Benjamini–Hochberg by hand: q_(i) = min over j >= i of p_(j) · m / j, capped at 1."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda k: pvalues[k])
    out = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        k = order[rank - 1]
        running = min(running, pvalues[k] * m / rank)
        out[k] = running
    return out


def test_position_bias_flags_are_corrected_for_multiplicity() -> None:
    # 300 annotators clicking at random with 40 votes each: by chance alone about 4 % of
    # them have a raw binomial p below 0.05. Only the one who always clicks left is flagged.
    frame = crowd_frame(300, random_votes=40, seed=3)
    stats = {s.annotator: s for s in annotator_stats(frame)}
    randoms = [s for name, s in stats.items() if name.startswith("random-")]
    raw_hits = [s for s in randoms if s.position_bias_p is not None and s.position_bias_p < 0.05]
    assert len(raw_hits) >= 5
    assert not any(s.position_bias_flag for s in randoms)
    assert stats["lefty"].position_bias_flag and stats["lefty"].position_bias_p_adjusted < 1e-6
    names = [n for n, s in stats.items() if s.position_bias_p is not None]
    expected = _hand_bh([stats[n].position_bias_p for n in names])
    for name, q in zip(names, expected, strict=True):
        assert stats[name].position_bias_p_adjusted == pytest.approx(q, rel=1e-9)
    # The raw p-value is still the exact binomial test.
    lefty = stats["lefty"]
    assert lefty.position_bias_p == pytest.approx(2 * 0.5**lefty.left_choices)


def test_low_agreement_with_the_majority_is_tested_against_the_others_rate() -> None:
    rng = np.random.default_rng(7)
    truth = [str(x) for x in rng.choice(["a", "b"], size=60)]
    labels = {
        f"c{k}": [t if rng.random() < 0.9 else ("b" if t == "a" else "a") for t in truth]
        for k in range(12)
    }
    labels["noise"] = [str(x) for x in rng.choice(["a", "b", "tie", "both_bad"], size=60)]
    frame = vote_frame(_rows(labels, seed=7))
    stats = {s.annotator: s for s in annotator_stats(frame)}
    noise = stats["noise"]
    assert noise.loo_flag and noise.loo_p_adjusted is not None and noise.loo_p_adjusted < 0.05
    assert not any(stats[f"c{k}"].loo_flag for k in range(12))
    # By hand: the pooled rate of everyone else, then the lower binomial tail.
    others = [s for n, s in stats.items() if n != "noise"]
    expected = sum(s.loo_compared * s.loo_agreement for s in others) / sum(
        s.loo_compared for s in others
    )
    assert noise.loo_expected == pytest.approx(expected)
    matched = round(noise.loo_agreement * noise.loo_compared)
    tail = sum(
        math.comb(noise.loo_compared, i) * expected**i * (1 - expected) ** (noise.loo_compared - i)
        for i in range(matched + 1)
    )
    assert noise.loo_p == pytest.approx(tail, rel=1e-9)
    assert noise.loo_p_adjusted == pytest.approx(
        _hand_bh([s.loo_p for s in stats.values()])[list(stats).index("noise")], rel=1e-9
    )
    json.dumps([s.to_dict() for s in stats.values()], allow_nan=False)
