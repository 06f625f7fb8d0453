"""Numbers as a person reads them, in the active language."""

from __future__ import annotations

from django.utils.formats import number_format


def decimal(value: float, digits: int) -> str:
    """``value`` rounded to ``digits`` decimals in the active language (0.500 / 0,500)."""
    return str(number_format(round(float(value), digits), decimal_pos=digits, use_l10n=True))
