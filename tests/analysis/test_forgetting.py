"""The forgetting table: scores, baselines, drops, paired bootstrap, McNemar and Holm."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binom

from sbs.analysis.stats.forgetting import (
    forgetting_table,
    mcnemar_worse,
    paired_bootstrap,
)


def entry(
    original: list[bool],
    adapted: list[bool],
    *,
    categories: list[str] | None = None,
    prompt_format: str = "cloze",
    name: str = "bench",
    original_norm: list[bool] | None = None,
    adapted_norm: list[bool] | None = None,
    answer: list[int] | None = None,
) -> dict:
    n = len(original)
    return {
        "benchmark": name,
        "prompt_format": prompt_format,
        "language": "ru",
        "category": categories or ["c"] * n,
        "n_choices": [4] * n,
        "answer": answer or [k % 4 for k in range(n)],
        "longest": [0] * n,
        "original": {"correct": original, "correct_norm": original_norm or original},
        "adapted": {"correct": adapted, "correct_norm": adapted_norm or adapted},
    }


def test_scores_drop_and_relative_drop_of_a_hand_example():
    original = [True] * 8 + [False] * 2  # 0.8
    adapted = [True] * 5 + [False] * 5  # 0.5
    [row] = forgetting_table([entry(original, adapted)], rounds=200).rows
    assert (row.category, row.n, row.metric) == ("", 10, "acc_norm")
    assert (row.original, row.adapted) == (0.8, 0.5)
    assert row.drop == pytest.approx(0.3) and row.relative_drop == pytest.approx(0.3 / 0.8)
    assert (row.only_original, row.only_adapted) == (3, 0)
    # exact one-sided McNemar: P(X >= 3), X ~ Bin(3, 1/2) = 1/8
    assert row.p == pytest.approx(0.125) and row.p_holm == pytest.approx(0.125)
    assert not row.forgets  # 3 discordant items cannot reach 0.05
    assert row.drop_low <= row.drop <= row.drop_high


def test_lettered_rows_use_acc_and_cloze_rows_acc_norm():
    original, adapted = [True, True, False, False], [True, False, False, False]
    norm_o, norm_a = [False, False, False, False], [True, True, True, True]
    kwargs = {"original_norm": norm_o, "adapted_norm": norm_a}
    [cloze] = forgetting_table([entry(original, adapted, **kwargs)], rounds=10).rows
    [lettered] = forgetting_table(
        [entry(original, adapted, prompt_format="lettered", **kwargs)], rounds=10
    ).rows
    assert (cloze.metric, cloze.original, cloze.adapted) == ("acc_norm", 0.0, 1.0)
    assert (lettered.metric, lettered.original, lettered.adapted) == ("acc", 0.5, 0.25)
    assert (lettered.original_acc_norm, lettered.adapted_acc_norm) == (0.0, 1.0)


def test_baselines_are_computed_per_row():
    e = entry([True] * 6, [True] * 6, categories=["a", "a", "a", "b", "b", "b"],
              answer=[0, 0, 1, 2, 2, 3])  # fmt: skip
    e["n_choices"] = [2, 2, 2, 4, 4, 4]
    e["longest"] = [0, 1, 1, 2, 0, 0]
    rows = {r.category: r for r in forgetting_table([e], rounds=10).rows}
    assert set(rows) == {"", "a", "b"}
    a, b, whole = rows["a"], rows["b"], rows[""]
    assert (a.chance, a.first, a.longest, a.majority) == pytest.approx((0.5, 2 / 3, 2 / 3, 2 / 3))
    assert (b.chance, b.first, b.longest, b.majority) == pytest.approx((0.25, 0, 1 / 3, 2 / 3))
    assert whole.chance == pytest.approx(0.375) and whole.majority == pytest.approx(2 / 6)


def test_paired_bootstrap_resamples_items_for_both_models_at_once():
    same = np.array([True, False, True, False] * 10)
    assert paired_bootstrap(same, same, rounds=500, seed=1, level=0.95) == (0.0, 0.0)
    ones, zeros = np.ones(30, dtype=bool), np.zeros(30, dtype=bool)
    assert paired_bootstrap(ones, zeros, rounds=100, seed=1, level=0.95) == (1.0, 1.0)
    rng = np.random.default_rng(5)
    a, b = rng.random(200) < 0.7, rng.random(200) < 0.5
    low, high = paired_bootstrap(a, b, rounds=2000, seed=3, level=0.95)
    # against a plain loop with the same generator and the same draws
    gen = np.random.default_rng(3)
    idx = gen.integers(0, 200, size=(2000, 200))
    means = [(a[i].astype(float) - b[i].astype(float)).mean() for i in idx]
    assert (low, high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    assert paired_bootstrap(a, b, rounds=2000, seed=3, level=0.95) == (low, high)


def test_mcnemar_is_the_exact_binomial_tail():
    assert mcnemar_worse(0, 0) is None
    assert mcnemar_worse(9, 1) == pytest.approx(binom.sf(8, 10, 0.5))
    assert mcnemar_worse(1, 9) == pytest.approx(binom.sf(0, 10, 0.5))


def test_holm_runs_across_every_row_and_flags_only_significant_drops():
    n = 60
    big_drop = entry([True] * n, [True] * 20 + [False] * 40, name="a-big")  # 40 vs 0
    small = entry([True] * 30 + [False] * 30, [True] * 28 + [False] * 32, name="b-small")
    gain = entry([False] * n, [True] * n, name="c-gain")  # the adapted model is better
    table = forgetting_table([big_drop, small, gain], rounds=200)
    by_name = {r.benchmark: r for r in table.rows}
    raw = [r.p for r in table.rows]
    m = sum(p is not None for p in raw)
    assert m == 3
    big = by_name["a-big"]
    assert big.p < 1e-9 and big.p_holm == pytest.approx(min(1.0, big.p * 3))
    assert big.forgets and table.flagged == ["a-big"]
    assert not by_name["b-small"].forgets and not by_name["c-gain"].forgets
    assert by_name["c-gain"].drop == -1.0 and by_name["c-gain"].p == pytest.approx(1.0)
    data = table.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["flagged"] == ["a-big"] and data["rows"][0]["benchmark"] == "a-big"


def test_empty_and_identical_inputs_give_no_flags():
    assert forgetting_table([]).rows == ()
    e = entry([True, False], [True, False])
    [row] = forgetting_table([e], rounds=50).rows
    assert row.drop == 0 and row.p is None and row.p_holm is None and not row.forgets
    e = entry([False, False], [False, False])
    [row] = forgetting_table([e], rounds=50).rows
    assert row.relative_drop is None  # nothing to lose


def test_the_forgetting_csv_holds_every_row_of_both_tables_and_neutralises_names():
    import csv
    import io

    from sbs.analysis.exports import FORGETTING_COLUMNS, forgetting_csv

    original = [True] * 8 + [False] * 2
    adapted = [True] * 5 + [False] * 5
    table = forgetting_table(
        [entry(original, adapted, name="=HYPERLINK(1)", categories=["a"] * 5 + ["b"] * 5)],
        rounds=200,
    ).to_dict()
    texts = {"rows": [{"category": "en", "paragraphs": 7, "original": 1.2, "adapted": 1.5,
                       "change": 0.3, "relative_change": 0.25, "change_low": 0.1,
                       "change_high": 0.5, "forgets": True}]}  # fmt: skip
    data = forgetting_csv({"forgetting": table, "texts": texts})
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(rows[0]) == FORGETTING_COLUMNS
    benchmark = [r for r in rows if r["table"] == "benchmark"]
    assert [r["category"] for r in benchmark] == ["", "a", "b"]  # the whole set, then each
    assert benchmark[0]["benchmark"] == "'=HYPERLINK(1)"  # no formula reaches a spreadsheet
    assert float(benchmark[0]["drop"]) == pytest.approx(0.3)
    assert float(benchmark[0]["drop_low"]) <= 0.3 <= float(benchmark[0]["drop_high"])
    [bpc] = [r for r in rows if r["table"] == "bits per character"]
    assert (bpc["category"], bpc["n"], bpc["drop"], bpc["forgets"]) == ("en", "7", "0.3", "1")
    assert forgetting_csv({}).decode("utf-8-sig").strip() == ",".join(FORGETTING_COLUMNS)
