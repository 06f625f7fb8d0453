"""Number formatting for the report tables (missing values as a dash, p-values honestly)
and the sections a report page shows."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.formats import get_format
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from sbs.analysis.sections import Section
from sbs.analysis.sections import page_sections as _page_sections
from sbs.analysis.stats.summary import most_extreme_annotators
from sbs.core.formats import decimal

register = template.Library()

DASH = "—"


@register.filter
def num(value: Any, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals in the active language, or a dash when missing."""
    if value is None or value == "":
        return DASH
    return decimal(float(value), int(digits))


@register.filter
def times(value: Any, digits: int = 2) -> str:
    """A ratio as ``1.28×``, or a dash when missing (never ``—×``)."""
    if value is None or value == "":
        return DASH
    return decimal(float(value), int(digits)) + "×"


@register.filter
def pval(value: Any) -> str:
    """A p-value: four decimals, ``< 0.0001`` below that, a dash when missing."""
    if value is None or value == "":
        return DASH
    p = float(value)
    return "< " + decimal(0.0001, 4) if p < 0.0001 else decimal(p, 4)


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    """A share as a percentage (``50.0%``, ``50,0%``), or a dash when missing."""
    if value is None or value == "":
        return DASH
    return decimal(100 * float(value), int(digits)) + "%"


@register.simple_tag
def interval(low: Any, high: Any, digits: int = 3) -> str:
    """``[low, high]``, ``[low; high]`` where the decimal mark is a comma, or a dash when
    either end is missing."""
    if low is None or high is None or low == "" or high == "":
        return DASH
    between = "; " if get_format("DECIMAL_SEPARATOR") == "," else ", "
    return f"[{decimal(float(low), digits)}{between}{decimal(float(high), digits)}]"


@register.filter
def breakable(value: Any) -> SafeString:
    """Text that may wrap after an underscore (``general_<wbr>knowledge``), escaped."""
    return mark_safe(conditional_escape(str(value)).replace("_", "_<wbr>"))  # noqa: S308


@register.filter
def ends(pair: Any, which: int) -> Any:
    """Element ``which`` of a two-element interval list (None-safe)."""
    if not pair:
        return None
    return pair[int(which)]


@register.filter
def annotator_rows(annotators: Any, limit: int) -> list[Any]:
    """Every annotator when there are at most ``limit``, else the ``limit`` most extreme.

    A page with hundreds of rows is not read; the JSON export carries every annotator.
    """
    rows = list(annotators or [])
    return rows if len(rows) <= int(limit) else most_extreme_annotators(rows, int(limit))


@register.filter
def page_sections(report: Any) -> list[Section]:
    """The sections with a partial that this report shows, in order (see
    :func:`sbs.analysis.report.page_sections`)."""
    return _page_sections(report or {})


@register.filter
def section_data(report: Any, key: str) -> Any:
    """The part of ``report`` a section computed (None when it has none)."""
    return (report or {}).get(key)


@register.filter
def matrix_rows(data: Any) -> list[tuple[str, list[tuple[Any, int, bool]]]]:
    """The pairwise section's matrix as table rows: (system, [(win rate, votes, on the
    diagonal) per column])."""
    if not data:
        return []
    return [
        (
            name,
            [
                (rate, count, i == j)
                for j, (rate, count) in enumerate(zip(rates, counts, strict=True))
            ],
        )
        for i, (name, rates, counts) in enumerate(
            zip(data["systems"], data["matrix"], data["counts"], strict=True)
        )
    ]
