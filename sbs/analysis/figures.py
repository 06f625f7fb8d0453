"""The report's plots as base64 SVG, labelled in the active language.

The page and the HTML export show them as ``<img src="data:image/svg+xml;base64,...">``:
the CSP forbids inline SVG styles, and a data: image needs no URL, so the exported file
opens offline. Drawing is done by :mod:`sbs.analysis.plots`; this module only picks the
numbers from a report dict and translates the labels.
"""

from __future__ import annotations

import base64
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from sbs.analysis import plots
from sbs.analysis.report import most_extreme_annotators


def _b64(svg: str) -> str:
    return base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _interval(boot: dict[str, Any] | None, wilson: list[Any]) -> tuple[Any, Any]:
    if boot and boot.get("low") is not None:
        return boot["low"], boot["high"]
    return wilson[0], wilson[1]


# Up to this many annotators the position-bias plot has one row each; above, a histogram
# of every annotator and the rows of the most extreme ones.
FOREST_MAX_ANNOTATORS = 30
EXTREME_ANNOTATORS = 15


def position_bias(annotators: list[dict[str, Any]]) -> str:
    """The position-bias SVG: one row per annotator, or a summary when there are many."""
    axis_label = _("share of decisive votes for the left answer (95% Wilson)")
    title = _("Position bias per annotator")
    if len(annotators) <= FOREST_MAX_ANNOTATORS:
        return plots.position_bias_svg(
            [a["annotator"] for a in annotators],
            [a["left_rate"] for a in annotators],
            [a["left_rate_low"] for a in annotators],
            [a["left_rate_high"] for a in annotators],
            title=title,
            axis_label=axis_label,
        )
    extreme = most_extreme_annotators(annotators, EXTREME_ANNOTATORS)
    return plots.position_bias_summary_svg(
        [a["left_rate"] for a in annotators],
        [str(a["annotator"]) for a in extreme],
        [a["left_rate"] for a in extreme],
        [a["left_rate_low"] for a in extreme],
        [a["left_rate_high"] for a in extreme],
        title=_("Position bias of %(n)d annotators") % {"n": len(annotators)},
        axis_label=axis_label,
        count_label=_("annotators"),
        extreme_title=_("The %(n)d most extreme annotators") % {"n": len(extreme)},
    )


def report_figures(report: dict[str, Any]) -> dict[str, str]:
    """Plot name -> base64 SVG for the plots the report has data for (active language)."""
    out: dict[str, str] = {}
    adapted = report["models"]["adapted"]
    cats = (report.get("categories") or {}).get("categories") or []
    if cats:
        intervals = [
            _interval(c["verdict"]["bootstrap_ties_half"], c["verdict"]["wilson_ties_half"])
            for c in cats
        ]
        out["categories"] = _b64(
            plots.win_rate_by_category_svg(
                [c["category"] for c in cats],
                [c["verdict"]["win_rate_ties_half"] for c in cats],
                [i[0] for i in intervals],
                [i[1] for i in intervals],
                title=_("Win rate of %(model)s by category") % {"model": adapted},
                # xgettext:no-python-format
                axis_label=_("win rate, ties as half (95% interval)"),
            )
        )
    ranking = report.get("ranking")
    if ranking:
        rows = ranking["ratings"]
        out["ranking"] = _b64(
            plots.ranking_forest_svg(
                [r["model"] for r in rows],
                [r["elo"] for r in rows],
                [r["elo_low"] for r in rows],
                [r["elo_high"] for r in rows],
                title=_("Bradley-Terry rating"),
                axis_label=_("Elo (95% bootstrap interval)"),
            )
        )
    annotators = [a for a in report.get("annotators") or [] if a["left_rate"] is not None]
    if annotators:
        out["position_bias"] = _b64(position_bias(annotators))
    v = report["verdict"]
    ratio = (report.get("speed") or {}).get("ratio")
    if ratio and ratio["chars_per_second"] is not None and v["win_rate_ties_half"] is not None:
        low, high = _interval(v["bootstrap_ties_half"], v["wilson_ties_half"])
        out["speed_vs_win_rate"] = _b64(
            plots.speed_vs_win_rate_svg(
                [adapted],
                [ratio["chars_per_second"]],
                [v["win_rate_ties_half"]],
                [low],
                [high],
                title=_("Speed beside quality"),
                x_label=_("characters per second, adapted / original"),
                y_label=_("win rate of the adapted model, ties as half"),
            )
        )
    return out


def report_figures_all_languages(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    """``{language code: report_figures(report)}`` for every language the site offers."""
    out = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            out[code] = report_figures(report)
    return out
