"""Conversion of result values to JSON-serialisable plain Python types."""

from __future__ import annotations

import dataclasses
import decimal
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def plain(value: Any) -> Any:
    """Return ``value`` as plain JSON types, every number finite or None.

    NaN, ±inf, ``pd.NA`` and ``NaT`` -> None; dataclasses and mappings -> dicts with str
    keys; tuples, lists, sets and arrays -> lists; numpy and Decimal scalars -> Python
    numbers. ``json.dumps(plain(x), allow_nan=False)`` never fails on a number.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return [plain(v) for v in sorted(value, key=str)]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64 | np.timedelta64) and np.isnat(value):
            return None
        value = value.item()
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def opt_float(value: Any) -> float | None:
    """``float(value)``, or None when it is None, NaN or infinite."""
    if value is None or value is pd.NA:
        return None
    out = float(value)
    return out if math.isfinite(out) else None
