"""SVG charts for the analysis pages (matplotlib, Agg, no pyplot state, no files, no CDN).

Every function returns an SVG document as a string. All visible text (titles, axis
labels, category and model names) is passed in by the caller, already translated.
Text is drawn as glyph paths (``svg.fonttype = "path"``) from DejaVu Sans, which covers
Cyrillic, so the chart looks the same whatever fonts the browser has. Output is
deterministic (fixed hash salt, no date).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.typing import RcKeyType  # noqa: E402

Number = float | int | None

_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "path",
    "svg.hashsalt": "sbs",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 10.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_POINT = "#1f4e79"
_REFERENCE = "#b03a2e"


def _svg(fig: Figure, title: str) -> str:
    buffer = io.StringIO()
    metadata: dict[str, str | None] = {"Date": None}
    if title:
        metadata["Title"] = title
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="svg", metadata=metadata)
    return buffer.getvalue()


def _value(x: Number) -> float:
    return math.nan if x is None else float(x)


def _figure(rows: int) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(7.0, max(2.2, 0.9 + 0.32 * rows)), layout="constrained")


def _forest(
    labels: Sequence[str],
    values: Sequence[Number],
    lows: Sequence[Number],
    highs: Sequence[Number],
    *,
    title: str,
    axis_label: str,
    reference: float | None,
    reference_label: str,
    limits: tuple[float, float] | None,
    percent: bool,
) -> str:
    if not (len(labels) == len(values) == len(lows) == len(highs)):
        raise ValueError("labels, values, lows and highs differ in length")
    with matplotlib.rc_context(_RC):
        fig = _figure(len(labels))
        ax: Axes = fig.add_subplot()
        ys = list(range(len(labels)))[::-1]  # first label on top
        xs = [_value(v) for v in values]
        lo = [_value(v) for v in lows]
        hi = [_value(v) for v in highs]
        err_minus = [x - low if not math.isnan(low) else 0.0 for x, low in zip(xs, lo, strict=True)]
        err_plus = [
            high - x if not math.isnan(high) else 0.0 for x, high in zip(xs, hi, strict=True)
        ]
        ax.errorbar(
            xs, ys, xerr=[err_minus, err_plus], fmt="o", color=_POINT, ecolor=_POINT,
            elinewidth=1.4, capsize=3, markersize=5,
        )  # fmt: skip
        if reference is not None:
            ax.axvline(
                reference, color=_REFERENCE, linestyle="--", linewidth=1, label=reference_label
            )
            if reference_label:
                ax.legend(loc="lower right", frameon=False, fontsize=8)
        ax.set_yticks(ys, list(labels))
        ax.set_ylim(-0.7, max(len(labels), 1) - 0.3)
        if limits is not None:
            ax.set_xlim(*limits)
        if percent:
            ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=1.0))
        ax.set_xlabel(axis_label)
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
        return _svg(fig, title)


def win_rate_by_category_svg(
    categories: Sequence[str],
    win_rates: Sequence[Number],
    lows: Sequence[Number],
    highs: Sequence[Number],
    *,
    title: str = "",
    axis_label: str = "",
    reference_label: str = "50%",
) -> str:
    """Win rate per category (points) with interval whiskers and a dashed 50 % line."""
    return _forest(
        categories, win_rates, lows, highs, title=title, axis_label=axis_label,
        reference=0.5, reference_label=reference_label, limits=(0.0, 1.0), percent=True,
    )  # fmt: skip


def ranking_forest_svg(
    models: Sequence[str],
    elo: Sequence[Number],
    lows: Sequence[Number],
    highs: Sequence[Number],
    *,
    title: str = "",
    axis_label: str = "Elo",
) -> str:
    """Forest plot of ratings: Elo per model (in the given order, top first) with intervals."""
    return _forest(
        models, elo, lows, highs, title=title, axis_label=axis_label,
        reference=None, reference_label="", limits=None, percent=False,
    )  # fmt: skip


def position_bias_svg(
    annotators: Sequence[str],
    left_rates: Sequence[Number],
    lows: Sequence[Number],
    highs: Sequence[Number],
    *,
    title: str = "",
    axis_label: str = "",
    reference_label: str = "50%",
) -> str:
    """Left-choice rate per annotator with interval whiskers and a dashed 50 % line."""
    return _forest(
        annotators, left_rates, lows, highs, title=title, axis_label=axis_label,
        reference=0.5, reference_label=reference_label, limits=(0.0, 1.0), percent=True,
    )  # fmt: skip


def speed_vs_win_rate_svg(
    labels: Sequence[str],
    speed_ratios: Sequence[Number],
    win_rates: Sequence[Number],
    lows: Sequence[Number] | None = None,
    highs: Sequence[Number] | None = None,
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
) -> str:
    """Scatter of win rate (y) against adapted/original tokens-per-second ratio (x).

    Optional vertical whiskers from ``lows``/``highs``; dashed guides at x = 1 and y = 0.5.
    """
    n = len(labels)
    if not (len(speed_ratios) == len(win_rates) == n):
        raise ValueError("labels, speed_ratios and win_rates differ in length")
    xs = [_value(v) for v in speed_ratios]
    ys = [_value(v) for v in win_rates]
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.0, 4.2), layout="constrained")
        ax: Axes = fig.add_subplot()
        if lows is not None and highs is not None:
            lo = [_value(v) for v in lows]
            hi = [_value(v) for v in highs]
            err = [
                [y - low if not math.isnan(low) else 0.0 for y, low in zip(ys, lo, strict=True)],
                [high - y if not math.isnan(high) else 0.0 for y, high in zip(ys, hi, strict=True)],
            ]
            ax.errorbar(xs, ys, yerr=err, fmt="none", ecolor=_POINT, elinewidth=1.2, capsize=3)
        ax.scatter(xs, ys, color=_POINT, zorder=3)
        for label, x, y in zip(labels, xs, ys, strict=True):
            if not (math.isnan(x) or math.isnan(y)):
                ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.axhline(0.5, color=_REFERENCE, linestyle="--", linewidth=1)
        ax.axvline(1.0, color="#777777", linestyle=":", linewidth=1)
        ax.set_ylim(0.0, 1.0)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=1.0))
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        return _svg(fig, title)
