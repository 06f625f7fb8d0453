"""The sections of a report, declared once.

A report (:func:`sbs.analysis.report.build_report`) is one JSON-serialisable dict: the
facts of the run (:data:`META_KEYS`: schema, models, settings, counts, compute time) and
one entry per section of :data:`SECTIONS`, in order. Each section is declared here, once,
with :func:`section` on its compute function:

- its **key** in the report dict (and in the JSON export);
- its **compute** function: a thin adapter from :class:`ReportInput` to the statistics
  modules (:mod:`sbs.analysis.stats`; nothing here re-derives a statistic), returning a
  dataclass with ``to_dict()``, a dict, a list or None;
- whether it is part of the **preliminary** report, the part a request may compute inline
  (counts, win rates, Wilson intervals, sign test, power, speed: ~10 ms on 78 x 15 votes);
  the rest waits for the Celery job (the agreement statistics alone take about a second
  there). A preliminary section reads only preliminary sections;
- its **template** partial, which the page and the HTML export include in this order
  (None: another section's partial shows it);
- its optional **figure**: a plot name and a function from the report dict to a base64
  SVG (numbers picked from the report, labels in the active language, drawn by
  :mod:`sbs.analysis.plots`), or None when the report has no data for it.

The builders (:mod:`sbs.analysis.report`), the page and the HTML export
(``analysis/_report_body.html``), the JSON export
(:func:`sbs.analysis.exports.report_json`), the plots (:mod:`sbs.analysis.figures`) and the
cache fingerprint (:func:`schema_hash`) all read this registry: a new section is its
function here, its partial and its test. Adding, removing or reordering sections changes
the fingerprint, so cached reports are computed again.

Orientation: every verdict is the adapted model's (model B) against the original's
(model A). Policies are those of the statistics package: repeat votes only measure
self-consistency; ``both_bad`` is reported apart, out of every win-rate denominator.

A study of three or more systems has no single orientation: each section says which
studies it belongs to (``systems``: ``"two"``, ``"many"`` or ``"any"``), and one that does not
apply is None in the report and absent from the page. Such a page leads with the
Bradley–Terry ranking of every system, then the pairwise matrix and verdicts.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from django.utils.translation import gettext as _

from sbs.analysis import plots
from sbs.analysis.stats.agreement import AgreementReport, agreement, annotator_stats
from sbs.analysis.stats.bradley_terry import bradley_terry
from sbs.analysis.stats.categories import CategoryReport, category_verdicts
from sbs.analysis.stats.forgetting import forgetting_table
from sbs.analysis.stats.frame import first_votes, models_in
from sbs.analysis.stats.pairwise import Pairwise, pairwise
from sbs.analysis.stats.power import PowerEstimate, votes_needed
from sbs.analysis.stats.summary import (
    annotator_flags,
    most_extreme_annotators,
    self_consistency,
    speed_section,
)
from sbs.analysis.stats.text_bpc import text_bpc_table
from sbs.analysis.stats.verdict import Verdict, verdict

# Bump when what a section computes changes without its key (e.g. a new correction);
# adding, removing or reordering sections changes the schema hash by itself.
SCHEMA_VERSION = 6  # 2: BH-adjusted annotator tests and flags; every number finite or None
# 3: the speed rows' distinct 3-gram share; 4: the verdict's interval is two-way cluster-robust
# 5: studies of N systems (models.systems, sections of two or of many systems)
# 6: among many systems, one whose every vote is "both bad" is left out of the ranking
FORGETTING_ROUNDS = 2000  # paired bootstrap of the benchmark drops (not tied to the votes)
LEVEL = 0.95
ALPHA = 0.05
POWER = 0.8

# The facts of the run beside the sections ("compute_seconds" only in a full report).
META_KEYS = ("schema", "preliminary", "models", "settings", "counts", "compute_seconds")


@dataclass(frozen=True)
class ReportInput:
    """What a section's compute function reads: the votes, the models, the settings and
    the results of the sections before it (by key, as their compute functions returned)."""

    frame: pd.DataFrame
    firsts: pd.DataFrame  # each annotator's first vote on each pair
    original: str
    adapted: str
    speed: Sequence[Mapping[str, Any]]
    rounds: int  # bootstrap rounds: 0 in the preliminary report and without first votes
    seed: int
    # Every system of the study in its order (original and adapted first).
    systems: tuple[str, ...] = ()
    done: dict[str, Any] = field(default_factory=dict)
    # Benchmark results both models have (sbs.questions.selectors.forgetting_inputs).
    benchmarks: Sequence[Mapping[str, Any]] = ()
    # Held-out texts by category: paragraphs' characters and both models' bits.
    texts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The adapted model's merging-factor sweep (adaptation.merging.SweepResult.to_dict()).
    merge: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Figure:
    """A section's plot: its name among the cached plots, and how it is drawn."""

    name: str
    draw: Callable[[Mapping[str, Any]], str | None]


Compute = Callable[[ReportInput], Any]


@dataclass(frozen=True)
class Section:
    key: str
    compute: Compute
    preliminary: bool = False
    template: str | None = None  # e.g. "analysis/sections/verdict.html"
    figure: Figure | None = None
    systems: str = "any"  # "two": adapted against original; "many": three or more systems

    def applies(self, n_systems: int) -> bool:
        """Whether a study of ``n_systems`` systems has this section."""
        return self.systems == "any" or (self.systems == "two") == (n_systems <= 2)


# Every section of a report, in page order. Register with :func:`section`.
SECTIONS: dict[str, Section] = {}


def section(
    key: str,
    *,
    preliminary: bool = False,
    template: str | None = None,
    figure: Figure | None = None,
    systems: str = "any",
) -> Callable[[Compute], Compute]:
    """Declare a report section computed by the decorated function (see the module doc)."""

    def register(compute: Compute) -> Compute:
        if key in SECTIONS or key in META_KEYS:
            raise ValueError(f"report section {key!r} is declared twice")
        SECTIONS[key] = Section(key, compute, preliminary, template, figure, systems)
        return compute

    return register


def report_schema() -> dict[str, Any]:
    """What a cached report holds: the version and, per section, its key, whether it is
    preliminary and the plot it draws."""
    return {
        "version": SCHEMA_VERSION,
        "sections": [
            [s.key, s.preliminary, s.figure.name if s.figure else None, s.systems]
            for s in SECTIONS.values()
        ],
    }


def schema_hash() -> str:
    """A short hash of :func:`report_schema`, part of the cache fingerprint."""
    text = json.dumps(report_schema(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# A study of three or more systems leads with these, in this order.
MANY_FIRST = ("ranking", "pairwise")


def n_systems(report: Mapping[str, Any]) -> int:
    """How many systems the report's study compares (a report from before N systems: 2)."""
    return len((report.get("models") or {}).get("systems") or ()) or 2


def page_sections(report: Mapping[str, Any]) -> list[Section]:
    """The sections a page or an HTML export shows, in order: those with a partial that
    apply to the study's number of systems, and in a preliminary report only the
    preliminary ones. With three or more systems the ranking and the pairs come first."""
    preliminary = bool(report.get("preliminary"))
    n = n_systems(report)
    shown = [
        s
        for s in SECTIONS.values()
        if s.template and (s.preliminary or not preliminary) and s.applies(n)
    ]
    if n > 2:
        shown.sort(
            key=lambda s: MANY_FIRST.index(s.key) if s.key in MANY_FIRST else len(MANY_FIRST)
        )
    return shown


def _b64(svg: str) -> str:
    return base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _interval(boot: dict[str, Any] | None, wilson: list[Any]) -> tuple[Any, Any]:
    if boot and boot.get("low") is not None:
        return boot["low"], boot["high"]
    return wilson[0], wilson[1]


# ---------------------------------------------------------------------------- the sections


@section("verdict", preliminary=True, template="analysis/sections/verdict.html", systems="two")
def _verdict(r: ReportInput) -> Verdict:
    return verdict(r.frame, r.adapted, r.original, rounds=r.rounds, seed=r.seed)


def pairwise_figure(report: Mapping[str, Any]) -> str | None:
    """The pairwise win-rate matrix as a heat map (row beats column)."""
    data = report.get("pairwise")
    if not data or not any(c for row in data["counts"] for c in row):
        return None
    return _b64(
        plots.win_matrix_svg(
            data["systems"],
            data["matrix"],
            data["counts"],
            title=_("Win rate of the row's system over the column's"),
            note=_("ties as half; n = votes of the pair"),
        )
    )


@section(
    "pairwise",
    preliminary=True,
    template="analysis/sections/pairwise.html",
    figure=Figure("pairwise", pairwise_figure),
    systems="many",
)
def _pairwise(r: ReportInput) -> Pairwise:
    return pairwise(r.frame, r.systems, rounds=r.rounds, seed=r.seed, alpha=ALPHA, level=LEVEL)


def speed_figure(report: Mapping[str, Any]) -> str | None:
    """Characters per second (adapted / original) beside the adapted model's win rate."""
    v = report.get("verdict")
    ratio = (report.get("speed") or {}).get("ratio")
    if not v or not ratio or ratio["chars_per_second"] is None or v["win_rate_ties_half"] is None:
        return None
    low, high = _interval(v["bootstrap_ties_half"], v["wilson_ties_half"])
    return _b64(
        plots.speed_vs_win_rate_svg(
            [report["models"]["adapted"]],
            [ratio["chars_per_second"]],
            [v["win_rate_ties_half"]],
            [low],
            [high],
            title=_("Speed beside quality"),
            x_label=_("characters per second, adapted / original"),
            y_label=_("win rate of the adapted model, ties as half"),
        )
    )


@section(
    "speed",
    preliminary=True,
    template="analysis/sections/speed.html",
    figure=Figure("speed_vs_win_rate", speed_figure),
)
def _speed(r: ReportInput) -> dict[str, Any]:
    if "pairwise" in r.done:  # many systems: each one's win rate against all it met
        return speed_section(r.speed, r.original, r.adapted, None,
                             rates=r.done["pairwise"].overall_by_system())  # fmt: skip
    win_rate = r.done["verdict"].win_rate_ties_half
    return speed_section(r.speed, r.original, r.adapted, win_rate)


def categories_figure(report: Mapping[str, Any]) -> str | None:
    """Win rate of the adapted model per category, with its 95% interval."""
    cats = (report.get("categories") or {}).get("categories") or []
    if not cats:
        return None
    intervals = [
        _interval(c["verdict"]["bootstrap_ties_half"], c["verdict"]["wilson_ties_half"])
        for c in cats
    ]
    return _b64(
        plots.win_rate_by_category_svg(
            [c["category"] for c in cats],
            [c["verdict"]["win_rate_ties_half"] for c in cats],
            [i[0] for i in intervals],
            [i[1] for i in intervals],
            title=_("Win rate of %(model)s by category") % {"model": report["models"]["adapted"]},
            # xgettext:no-python-format
            axis_label=_("win rate, ties as half (95% interval)"),
        )
    )


@section(
    "categories",
    template="analysis/sections/categories.html",
    figure=Figure("categories", categories_figure),
    systems="two",
)
def _categories(r: ReportInput) -> CategoryReport:
    return category_verdicts(
        r.frame, r.adapted, r.original, alpha=ALPHA, rounds=r.rounds, seed=r.seed
    )


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


def position_bias_figure(report: Mapping[str, Any]) -> str | None:
    """Each annotator's left-choice rate (or a summary of many annotators)."""
    annotators = [a for a in report.get("annotators") or [] if a["left_rate"] is not None]
    return _b64(position_bias(annotators)) if annotators else None


@section(
    "annotators",
    template="analysis/sections/annotators.html",
    figure=Figure("position_bias", position_bias_figure),
)
def _annotators(r: ReportInput) -> list[dict[str, Any]]:
    return [a.to_dict() for a in annotator_stats(r.frame, alpha=ALPHA)]


@section("annotator_flags")  # shown by the annotators partial
def _annotator_flags(r: ReportInput) -> dict[str, Any]:
    return annotator_flags(r.done["annotators"], alpha=ALPHA)


@section("self_consistency")  # shown by the annotators partial
def _self_consistency(r: ReportInput) -> dict[str, Any]:
    return self_consistency(r.done["annotators"])


@section("agreement", template="analysis/sections/agreement.html")
def _agreement(r: ReportInput) -> AgreementReport | None:
    return agreement(r.frame) if len(r.frame) else None


@section("power", preliminary=True, template="analysis/sections/power.html", systems="two")
def _power(r: ReportInput) -> PowerEstimate:
    v = r.done["verdict"]
    return votes_needed(v.wins, v.losses, v.n_questions, alpha=ALPHA, power=POWER)


def ranking_figure(report: Mapping[str, Any]) -> str | None:
    """The Bradley-Terry ratings on the Elo scale, with their bootstrap intervals."""
    ranking = report.get("ranking")
    if not ranking:
        return None
    rows = ranking["ratings"]
    return _b64(
        plots.ranking_forest_svg(
            [r["model"] for r in rows],
            [r["elo"] for r in rows],
            [r["elo_low"] for r in rows],
            [r["elo_high"] for r in rows],
            title=_("Bradley-Terry rating"),
            axis_label=_("Elo (95% bootstrap interval)"),
        )
    )


@section(
    "ranking",
    template="analysis/sections/ranking.html",
    figure=Figure("ranking", ranking_figure),
)
def _ranking(r: ReportInput) -> dict[str, Any] | None:
    """Bradley–Terry ratings of the study's systems (only votes between them count). Among
    many systems, one whose every vote is "both bad" has no rating: nothing was learnt about
    it, and the fit would show it at the mean with a zero-width interval."""
    many = len(r.systems) > 2
    systems = list(r.systems) if many else [r.adapted, r.original]
    votes = r.frame.loc[r.frame["model_a"].isin(systems) & r.frame["model_b"].isin(systems)]
    firsts = first_votes(votes)
    rated = models_in(firsts.loc[firsts["choice"] != "both_bad"] if many else firsts)
    if len(rated) < 2:
        return None
    systems = [s for s in systems if s in rated]  # a system without votes has no rating
    return bradley_terry(votes, models=systems, rounds=r.rounds, seed=r.seed, level=LEVEL).to_dict()


def forgetting_figure(report: Mapping[str, Any]) -> str | None:
    """The drop of each benchmark row (original - adapted) with its paired bootstrap
    interval; right of the dashed zero line the adapted model forgot."""
    rows = (report.get("forgetting") or {}).get("rows") or []
    if not rows:
        return None
    labels = [
        f"{r['benchmark']} · {r['category'] or _('all')} ({r['prompt_format']})" for r in rows
    ]
    return _b64(
        plots._forest(
            labels, [r["drop"] for r in rows], [r["drop_low"] for r in rows],
            [r["drop_high"] for r in rows],
            title=_("Forgetting: benchmark score of the original minus the adapted model"),
            # xgettext:no-python-format
            axis_label=_("drop in accuracy (95% paired bootstrap interval)"),
            reference=0.0, reference_label=_("no change"), limits=None, percent=True,
        )
    )  # fmt: skip


@section(
    "forgetting",
    template="analysis/sections/forgetting.html",
    figure=Figure("forgetting", forgetting_figure),
    systems="two",
)
def _forgetting(r: ReportInput) -> dict[str, Any] | None:
    if not r.benchmarks:
        return None
    return forgetting_table(
        r.benchmarks, alpha=ALPHA, level=LEVEL, rounds=FORGETTING_ROUNDS, seed=r.seed
    ).to_dict()


@section("texts", template="analysis/sections/texts.html", systems="two")
def _texts(r: ReportInput) -> dict[str, Any] | None:
    """Bits per character of both models on the shipped held-out texts, by category."""
    if not r.texts:
        return None
    return text_bpc_table(r.texts, rounds=FORGETTING_ROUNDS, seed=r.seed, level=LEVEL)


def phi_curve_figure(report: Mapping[str, Any]) -> str | None:
    """Russian gain and forgetting per category against φ, the chosen φ marked."""
    curve = report.get("merge")
    if not curve or not curve.get("points"):
        return None
    points = curve["points"]
    return _b64(
        plots.phi_curve_svg(
            [p["phi"] for p in points], [p["gain"] for p in points],
            {c: [p["forgetting_by_category"].get(c) for p in points]
             for c in curve["categories"]},
            chosen=curve["best_phi"], tolerance=curve["tolerance"],
            title=_("Merging factor φ: what was gained and what was lost"),
            gain_label=_("Russian gain, bits per character"),
            forgetting_label=_("forgetting (relative, per category)"),
            phi_label=_("merging factor φ"), chosen_label=_("chosen φ"),
            tolerance_label=_("tolerance"),
        )
    )  # fmt: skip


def _phi_point(point: Mapping[str, Any], categories: list[str]) -> dict[str, Any]:
    """One φ of the sweep; ``by_category`` lists its forgetting in ``categories``' order."""
    forgetting = dict(point.get("forgetting_by_category") or {})
    return {
        "phi": point["phi"], "bpc": point.get("bpc"), "gain": point.get("gain"),
        "relative_gain": point.get("relative_gain"), "forgetting": point.get("forgetting"),
        "within_tolerance": point.get("within_tolerance"),
        "forgetting_by_category": forgetting,
        "by_category": [forgetting.get(c) for c in categories],
    }  # fmt: skip


def phi_curve(sweep: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A merging-factor sweep as recorded in a recipe (``SweepResult.to_dict()``): the curve
    by φ, the categories, the choice; None without one."""
    if not sweep or not sweep.get("scores"):
        return None
    points = sorted(sweep["scores"], key=lambda p: p["phi"])
    categories = sorted({c for p in points for c in p.get("forgetting_by_category") or {}})
    return {
        "best_phi": sweep.get("best_phi"),
        "select_by": sweep.get("select_by"),
        "tolerance": sweep.get("tolerance"),
        "fallback": bool(sweep.get("fallback")),
        "categories": categories,
        "points": [_phi_point(p, categories) for p in points],
    }


@section(
    "merge",
    template="analysis/sections/merge.html",
    figure=Figure("phi", phi_curve_figure),
    systems="two",
)
def _merge(r: ReportInput) -> dict[str, Any] | None:
    """The adapted model's φ sweep as recorded in its recipe: the curve and the choice."""
    return phi_curve(r.merge)
