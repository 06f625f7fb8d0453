"""Bits per character by category: ratio of sums, the paired bootstrap, the flag."""

from __future__ import annotations

import numpy as np
import pytest

from sbs.analysis.stats.text_bpc import text_bpc_table


def test_bpc_is_a_ratio_of_sums_and_the_change_is_adapted_minus_original():
    texts = {"ru": {"chars": [100, 300], "original": [200.0, 900.0], "adapted": [150.0, 600.0]}}
    [row] = text_bpc_table(texts, rounds=0)["rows"]
    assert row["original"] == pytest.approx(1100 / 400)  # not the mean of 2.0 and 3.0
    assert row["adapted"] == pytest.approx(750 / 400)
    assert row["change"] == pytest.approx(-350 / 400)
    assert row["relative_change"] == pytest.approx(-350 / 1100)
    assert row["change_low"] is None and not row["forgets"]


def test_the_paired_bootstrap_against_a_direct_computation():
    rng = np.random.default_rng(5)
    chars = rng.integers(50, 400, 12).astype(float)
    original = chars * rng.uniform(2.5, 3.5, 12)
    adapted = original + chars * rng.uniform(0.05, 0.4, 12)  # worse on every paragraph
    texts = {"en": {"chars": chars, "original": original, "adapted": adapted}}
    [row] = text_bpc_table(texts, rounds=4000, seed=9)["rows"]
    # the same resampling, written out replicate by replicate
    again = np.random.default_rng(9).integers(0, 12, size=(4000, 12))
    deltas = [(adapted[i].sum() - original[i].sum()) / chars[i].sum() for i in again]
    assert row["change_low"] == pytest.approx(np.quantile(deltas, 0.025))
    assert row["change_high"] == pytest.approx(np.quantile(deltas, 0.975))
    assert 0 < row["change_low"] < row["change"] < row["change_high"] and row["forgets"]


def test_identical_models_change_nothing_and_broken_rows_are_skipped():
    same = {"chars": [10, 20], "original": [30.0, 50.0], "adapted": [30.0, 50.0]}
    table = text_bpc_table({"b": same, "a": {"chars": [], "original": [], "adapted": []},
                            "c": {"chars": [1], "original": [1.0, 2.0], "adapted": [1.0]}})  # fmt: skip
    [row] = table["rows"]
    assert row["category"] == "b" and row["change"] == 0 and row["change_high"] == 0
    assert not row["forgets"]
