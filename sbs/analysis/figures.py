"""The report's plots as base64 SVG, labelled in the active language.

The page and the HTML export show them as ``<img src="data:image/svg+xml;base64,...">``:
the CSP forbids inline SVG styles, and a data: image needs no URL, so the exported file
opens offline. Each plot belongs to a section and is declared with it
(:data:`sbs.analysis.sections.SECTIONS`: a name and a function that picks the numbers
from the report and translates the labels); drawing is done by :mod:`sbs.analysis.plots`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.formats import get_format

from sbs.analysis import plots
from sbs.analysis.sections import SECTIONS


def _active_decimal_mark() -> AbstractContextManager[None]:
    return plots.decimal_mark(str(get_format("DECIMAL_SEPARATOR")))


def section_figure(key: str, data: Any) -> dict[str, str]:
    """``{plot name: base64 SVG}`` of one section's plot drawn from its data alone (a page
    showing that section outside a report, such as a model's φ curve), in the active
    language; empty without data or plot."""
    figure = SECTIONS[key].figure
    if figure is None or data is None:
        return {}
    with _active_decimal_mark():
        svg = figure.draw({key: data})
    return {figure.name: svg} if svg is not None else {}


def report_figures(report: Mapping[str, Any]) -> dict[str, str]:
    """Plot name -> base64 SVG for the plots the report has data for (active language),
    one per section that declares a figure, in the sections' order."""
    out: dict[str, str] = {}
    with _active_decimal_mark():
        for section in SECTIONS.values():
            if section.figure is not None:
                svg = section.figure.draw(report)
                if svg is not None:
                    out[section.figure.name] = svg
    return out


def report_figures_all_languages(report: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``{language code: report_figures(report)}`` for every language the site offers."""
    out = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            out[code] = report_figures(report)
    return out
