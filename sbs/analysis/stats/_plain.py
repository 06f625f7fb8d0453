"""Conversion of result values to JSON-serialisable plain Python types."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    """Return ``value`` as plain JSON types: NaN/inf -> None, tuples -> lists, numpy -> Python."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def opt_float(value: float) -> float | None:
    """``float(value)``, or None when it is NaN or infinite."""
    out = float(value)
    return out if math.isfinite(out) else None
