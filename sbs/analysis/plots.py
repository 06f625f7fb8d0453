"""SVG charts for the analysis pages (matplotlib, Agg, no pyplot state, no files, no CDN).

Every function returns an SVG document as a string. All visible text (titles, axis
labels, category and model names) is passed in by the caller, already translated.
Tick labels use the decimal mark set with :func:`decimal_mark` (0,5 in Russian).
Text is drawn as glyph paths (``svg.fonttype = "path"``) from DejaVu Sans, which covers
Cyrillic, so the chart looks the same whatever fonts the browser has. Output is
deterministic (fixed hash salt, no date).
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import math
import textwrap
import unicodedata
from collections.abc import Iterator, Sequence
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


_DECIMAL_MARK: contextvars.ContextVar[str] = contextvars.ContextVar("decimal_mark", default=".")


@contextlib.contextmanager
def decimal_mark(mark: str) -> Iterator[None]:
    """Draw tick labels with ``mark`` as the decimal separator inside this block."""
    token = _DECIMAL_MARK.set(mark)
    try:
        yield
    finally:
        _DECIMAL_MARK.reset(token)


class _LocalisedTicks(matplotlib.ticker.Formatter):
    """Another formatter's labels with its decimal point replaced by ``mark``."""

    def __init__(self, inner: matplotlib.ticker.Formatter, mark: str) -> None:
        self.inner = inner
        self.mark = mark

    def _swap(self, text: str) -> str:
        # in mathtext a bare comma is punctuation followed by a space; "{,}" is not
        return text.replace(".", "{,}" if "$" in text and self.mark == "," else self.mark)

    def set_axis(self, axis: Any) -> None:
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def set_locs(self, locs: Any) -> None:
        self.inner.set_locs(locs)

    def format_ticks(self, values: Any) -> list[str]:
        return [self._swap(text) for text in self.inner.format_ticks(values)]

    def __call__(self, x: float, pos: int | None = None) -> str:
        return self._swap(self.inner(x, pos))

    def get_offset(self) -> str:
        return self._swap(self.inner.get_offset())


def _localise_ticks(fig: Figure) -> None:
    mark = _DECIMAL_MARK.get()
    if mark == ".":
        return
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            inner = axis.get_major_formatter()
            if not isinstance(inner, _LocalisedTicks):
                axis.set_major_formatter(_LocalisedTicks(inner, mark))


def _svg(fig: Figure, title: str) -> str:
    _localise_ticks(fig)
    buffer = io.StringIO()
    metadata: dict[str, str | None] = {"Date": None}
    if title:
        metadata["Title"] = _plain_text(title)
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="svg", metadata=metadata)
    return buffer.getvalue()


def _plain_text(text: object) -> str:
    """``text`` without control characters (a tab has no glyph; most are invalid in XML)."""
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in str(text))


def _label(text: object) -> str:
    """Text to draw: no control characters, and ``$`` escaped so that a name like ``$x^$`` is
    shown as typed instead of being parsed (and failing) as mathtext."""
    return _plain_text(text).replace("$", r"\$")


def _wrapped(text: object, width: int) -> str:
    """A title or axis label broken into lines of at most ``width`` characters (a long
    translated label would otherwise be cut at the figure's edge)."""
    return "\n".join(textwrap.wrap(_label(text), width, break_long_words=False)) or ""


def _value(x: Number) -> float:
    """A plottable float: NaN for None, NaN and ±inf alike (drawn as nothing)."""
    value = math.nan if x is None else float(x)
    return value if math.isfinite(value) else math.nan


def _figure(rows: int) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(7.0, max(2.2, 0.9 + 0.32 * rows)), layout="constrained")


def _errors(
    centres: Sequence[float], lows: Sequence[float], highs: Sequence[float]
) -> list[list[float]]:
    """Whisker lengths below and above each point: never negative, 0 where an end is missing.

    An interval computed in floating point can miss its own point by an ulp (a Wilson bound
    of 0.9999999999999999 for 10 of 10); matplotlib refuses any negative length.
    """

    def length(a: float, b: float) -> float:
        d = b - a
        return d if math.isfinite(d) and d > 0 else 0.0

    return [
        [length(low, x) for x, low in zip(centres, lows, strict=True)],
        [length(x, high) for x, high in zip(centres, highs, strict=True)],
    ]


def _draw_forest(
    ax: Axes,
    labels: Sequence[str],
    values: Sequence[Number],
    lows: Sequence[Number],
    highs: Sequence[Number],
    *,
    reference: float | None,
    reference_label: str,
    limits: tuple[float, float] | None,
    percent: bool,
) -> None:
    if not (len(labels) == len(values) == len(lows) == len(highs)):
        raise ValueError("labels, values, lows and highs differ in length")
    ys = list(range(len(labels)))[::-1]  # first label on top
    xs = [_value(v) for v in values]
    lo = [_value(v) for v in lows]
    hi = [_value(v) for v in highs]
    if labels:
        ax.errorbar(
            xs, ys, xerr=_errors(xs, lo, hi), fmt="o", color=_POINT, ecolor=_POINT,
            elinewidth=1.4, capsize=3, markersize=5,
        )  # fmt: skip
    if reference is not None:
        ax.axvline(
            reference, color=_REFERENCE, linestyle="--", linewidth=1, label=_label(reference_label)
        )
        if reference_label:
            ax.legend(loc="lower right", frameon=False, fontsize=8)
    ax.set_yticks(ys, [_label(x) for x in labels])
    ax.set_ylim(-0.7, max(len(labels), 1) - 0.3)
    if limits is not None:
        ax.set_xlim(*limits)
    if percent:
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=1.0))
    ax.grid(axis="x", alpha=0.3)


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
    with matplotlib.rc_context(_RC):
        fig = _figure(len(labels))
        ax: Axes = fig.add_subplot()
        _draw_forest(
            ax, labels, values, lows, highs, reference=reference,
            reference_label=reference_label, limits=limits, percent=percent,
        )  # fmt: skip
        ax.set_xlabel(_wrapped(axis_label, 90))
        ax.figure.suptitle(_wrapped(title, 70))
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


def position_bias_summary_svg(
    left_rates: Sequence[Number],
    annotators: Sequence[str],
    extreme_rates: Sequence[Number],
    lows: Sequence[Number],
    highs: Sequence[Number],
    *,
    title: str = "",
    axis_label: str = "",
    count_label: str = "",
    extreme_title: str = "",
    reference_label: str = "50%",
) -> str:
    """Position bias of many annotators: a histogram of every left-choice rate (top) and the
    forest of the few most extreme annotators, chosen by the caller (bottom).

    Readable at any number of annotators: the histogram has 20 bins of 5 %, the forest
    only the rows passed in ``annotators``/``extreme_rates``/``lows``/``highs``.
    """
    rates = [_value(v) for v in left_rates]
    finite = [x for x in rates if math.isfinite(x)]
    with matplotlib.rc_context(_RC):
        fig = Figure(
            figsize=(7.0, 3.2 + max(2.2, 0.9 + 0.32 * len(annotators))), layout="constrained"
        )
        top, bottom = fig.subplots(
            2, 1, height_ratios=[2.6, max(2.2, 0.9 + 0.32 * len(annotators))]
        )
        top.hist(finite, bins=20, range=(0.0, 1.0), color=_POINT, alpha=0.85)
        top.axvline(0.5, color=_REFERENCE, linestyle="--", linewidth=1)
        top.set_xlim(0.0, 1.0)
        top.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=1.0))
        top.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        top.set_ylabel(_wrapped(count_label, 45))
        top.figure.suptitle(_wrapped(title, 70))
        top.grid(axis="y", alpha=0.3)
        _draw_forest(
            bottom, annotators, extreme_rates, lows, highs, reference=0.5,
            reference_label=reference_label, limits=(0.0, 1.0), percent=True,
        )  # fmt: skip
        bottom.set_xlabel(_wrapped(axis_label, 90))
        bottom.set_title(_wrapped(extreme_title, 55), fontsize=10)
        return _svg(fig, title)


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
            if n:
                ax.errorbar(
                    xs, ys, yerr=_errors(ys, lo, hi), fmt="none", ecolor=_POINT,
                    elinewidth=1.2, capsize=3,
                )  # fmt: skip
        ax.scatter(xs, ys, color=_POINT, zorder=3)
        for label, x, y in zip(labels, xs, ys, strict=True):
            if math.isfinite(x) and math.isfinite(y):
                ax.annotate(
                    _label(label), (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8
                )
        ax.axhline(0.5, color=_REFERENCE, linestyle="--", linewidth=1)
        ax.axvline(1.0, color="#777777", linestyle=":", linewidth=1)
        ax.set_ylim(0.0, 1.0)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=1.0))
        ax.set_xlabel(_wrapped(x_label, 90))
        ax.set_ylabel(_wrapped(y_label, 45))
        ax.figure.suptitle(_wrapped(title, 70))
        ax.grid(alpha=0.3)
        return _svg(fig, title)


def phi_curve_svg(
    phis: Sequence[float],
    gains: Sequence[Number],
    forgetting: dict[str, Sequence[Number]],
    *,
    chosen: float | None,
    tolerance: float | None,
    title: str = "",
    gain_label: str = "",
    forgetting_label: str = "",
    phi_label: str = "φ",
    chosen_label: str = "",
    tolerance_label: str = "",
) -> str:
    """The merging-factor sweep: Russian gain (top) and forgetting per category (bottom)
    against φ, the chosen φ as a vertical line on both, the tolerance as a dashed line."""
    xs = [float(p) for p in phis]
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.0, 5.2), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.plot(xs, [_value(g) for g in gains], marker="o", color=_POINT)
        top.axhline(0.0, color="#777777", linewidth=0.8)
        top.set_ylabel(_wrapped(gain_label, 30))
        top.figure.suptitle(_wrapped(title, 70))
        for name, values in forgetting.items():
            bottom.plot(xs, [_value(v) for v in values], marker=".", label=_label(name))
        if tolerance is not None:
            bottom.axhline(
                tolerance, color=_REFERENCE, linestyle="--", linewidth=1,
                label=_label(tolerance_label),
            )  # fmt: skip
        bottom.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=1.0))
        bottom.set_ylabel(_wrapped(forgetting_label, 30))
        bottom.set_xlabel(_wrapped(phi_label, 90))
        if chosen is not None:
            for ax in (top, bottom):
                ax.axvline(chosen, color="#2e7d32", linewidth=1.5, label=_label(chosen_label))
        if forgetting or tolerance is not None or chosen is not None:
            bottom.legend(loc="best", frameon=False, fontsize=7)
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
        return _svg(fig, title)


def win_matrix_svg(
    systems: Sequence[str],
    matrix: Sequence[Sequence[Number]],
    counts: Sequence[Sequence[int]],
    *,
    title: str = "",
    note: str = "",
) -> str:
    """Heat map of the pairwise win rates: cell (i, j) is system i's win rate over j, its
    percentage and vote count written in it; a pair without votes and the diagonal are
    blank. Diverging colours centred on 50 %."""
    n = len(systems)
    if len(matrix) != n or len(counts) != n:
        raise ValueError("systems, matrix and counts differ in size")
    values = [[_value(matrix[i][j]) if i != j else math.nan for j in range(n)] for i in range(n)]
    labels = [_wrapped(s, 18) for s in systems]
    mark = _DECIMAL_MARK.get()
    with matplotlib.rc_context(_RC):
        size = 2.2 + 0.75 * n
        fig = Figure(figsize=(size + 1.2, size), layout="constrained")
        ax: Axes = fig.add_subplot()
        image = ax.imshow(values, cmap="RdBu", vmin=0.0, vmax=1.0)
        for i in range(n):
            for j in range(n):
                v = values[i][j]
                if math.isfinite(v):
                    text = f"{v:.0%}\nn={counts[i][j]}".replace(".", mark)
                    colour = "white" if abs(v - 0.5) > 0.3 else "black"
                    ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
        ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(n), labels, fontsize=8)
        ax.spines[:].set_visible(False)
        bar = fig.colorbar(image, ax=ax, shrink=0.8)
        bar.ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(xmax=1.0))
        if note:
            ax.set_xlabel(_wrapped(note, 70), fontsize=8)
        fig.suptitle(_wrapped(title, 70))
        return _svg(fig, title)
