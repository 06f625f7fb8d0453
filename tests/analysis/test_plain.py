"""Results become plain JSON with every number finite or None."""

from __future__ import annotations

import decimal
import json
import math

import numpy as np
import pandas as pd

from sbs.analysis.report import build_report
from sbs.analysis.stats._plain import opt_float, plain

from .conftest import make_votes


def test_plain_turns_every_non_finite_or_missing_value_into_none() -> None:
    value = {
        "nan": math.nan,
        "inf": -math.inf,
        "np_inf": np.float32("inf"),
        "np_nan": np.float64("nan"),
        "na": pd.NA,
        "nat": pd.NaT,
        "np_nat": np.datetime64("NaT"),
        "decimal": decimal.Decimal("NaN"),
        "array": np.array([1.0, np.nan, np.inf]),
        "tuple": (np.int64(3), np.bool_(True)),
        "set": {2, 1},
        1: "key",
    }
    out = plain(value)
    text = json.dumps(out, allow_nan=False)  # raises on any NaN or infinity left
    assert json.loads(text) == {
        "nan": None, "inf": None, "np_inf": None, "np_nan": None, "na": None, "nat": None,
        "np_nat": None, "decimal": None, "array": [1.0, None, None], "tuple": [3, True],
        "set": [1, 2], "1": "key",
    }  # fmt: skip
    assert opt_float(None) is None and opt_float(np.float64("inf")) is None
    assert opt_float(np.float32(0.5)) == 0.5


def test_speed_rows_with_missing_or_zero_medians_leave_no_nan_in_the_report() -> None:
    speed = [
        {"model": "original", "answers": 3, "median_new_tokens": 0.0,
         "median_tokens_per_second": math.nan, "median_chars_per_second": 0.0,
         "median_chars": math.inf, "eos_share": math.nan},
        {"model": "adapted", "answers": 3, "median_new_tokens": 4.0,
         "median_tokens_per_second": 2.0, "median_chars_per_second": 5.0,
         "median_chars": 3.0, "eos_share": 1.0},
    ]  # fmt: skip
    report = build_report(
        make_votes(["a", "b", "tie"]), original="original", adapted="adapted", speed=speed, rounds=5
    )
    json.dumps(report, allow_nan=False)
    assert report["speed"]["ratio"] == {
        "new_tokens": None, "tokens_per_second": None, "chars_per_second": None, "chars": None,
        "reference_forced_speedup": None, "reference_single_pass_speedup": None,
    }  # fmt: skip
    assert report["speed"]["rows"][0]["median_tokens_per_second"] is None
