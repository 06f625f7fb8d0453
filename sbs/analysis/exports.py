"""Exports of a study: votes CSV, report JSON, self-contained HTML report, DPO JSONL.

Every format is declared once, in :data:`FORMATS` (key -> :class:`ExportFormat`: label,
content type, file name, renderer, where the manifest goes, what it is rendered from);
the results page's download buttons, the export view, ``manage.py export_report
--format`` and :func:`export_file` all read it, so a new format is its renderer and its
entry here (and its test).

Every export carries a manifest (:func:`export_manifest`): software version, seed,
bootstrap rounds, the question set's sha256, a sha256 over the answers and the votes
fingerprint, so that a report can be traced to its exact inputs and recomputed.

Where the manifest goes (:class:`ManifestPolicy`):

* ``json`` and ``html``: embedded (the ``manifest`` key; a "Manifest" table).
* ``csv`` and the preference files: beside the data; the page downloads a ``.zip``
  holding the data file and ``manifest.json``; ``manage.py export_report`` writes
  ``PATH`` and ``PATH.manifest.json`` beside it.

The CSV is UTF-8 with a byte-order mark, so that Excel shows Cyrillic. The DPO files are
JSON lines with ``prompt``, ``chosen``, ``rejected`` and metadata; ties, both-bad votes,
repeat votes and questions with an excluded answer are left out, and the policy is
written into the manifest.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import math
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from sbs.analysis import selectors
from sbs.analysis.figures import report_figures
from sbs.analysis.sections import META_KEYS, SECTIONS
from sbs.analysis.stats._plain import plain
from sbs.analysis.stats.verdict import DEFAULT_INTERVAL, INTERVAL_METHODS
from sbs.studies.models import Study

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

Aggregate = Literal["none", "majority"]

CSV_COLUMNS = (
    "question_id",
    "category",
    "annotator",
    "left_model",
    "right_model",
    "choice",
    "winner_model",
    "seconds",
    "comment",
    "created",
    "repeat",
    "excluded",
)
ANSWERS_HASH_METHOD = (
    "sha256 of UTF-8 JSON lines [question external_id, model name, answer text], "
    "sorted, each followed by a newline"
)


def software_version() -> str:
    try:
        return importlib.metadata.version("sbs")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


def winner_model(left: str, right: str, choice: str) -> str:
    """The model the annotator preferred: the left one for ``left``, else ``right``'s; '' if none."""
    return {"left": left, "right": right}.get(choice, "")


def export_manifest(
    study: Study,
    *,
    fmt: str,
    rounds: int,
    seed: int,
    fingerprint: str,
    n_votes: int,
    policy: Mapping[str, Any] | None = None,
    created: datetime | None = None,
) -> dict[str, Any]:
    """The reproducibility manifest every export carries (see the module docstring)."""
    qs = study.question_set
    out: dict[str, Any] = {
        "software": "sbs",
        "version": software_version(),
        "created": (created or timezone.now()).isoformat(),
        "format": fmt,
        "study": {"id": study.pk, "name": study.name, "status": study.status},
        "models": {
            "original": {"name": study.model_a.name, "sha256": study.model_a.sha256},
            "adapted": {"name": study.model_b.name, "sha256": study.model_b.sha256},
            "systems": [{"name": m.name, "sha256": m.sha256} for m in study.systems()],
        },
        "question_set": {
            "name": qs.name,
            "sha256": qs.sha256,
            "questions": qs.questions.count(),
        },
        "answers_sha256": selectors.answers_sha256(study),
        "answers_sha256_method": ANSWERS_HASH_METHOD,
        "generation": study.generation,
        "votes": {"count": n_votes, "fingerprint": fingerprint},
        "analysis": {
            "seed": seed,
            "bootstrap_rounds": rounds,
            "interval": INTERVAL_METHODS[DEFAULT_INTERVAL],
            "bootstrap": "Bradley-Terry: resampling of vote cells",
        },
    }
    if policy is not None:
        out["policy"] = dict(policy)
    return out


# A spreadsheet reads a cell that starts with one of these as a formula (OWASP, "CSV
# Injection"): =, +, - and @ start a formula, a tab or carriage return before them hides it.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One CSV cell as text, safe to open in a spreadsheet.

    A **string** that begins with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a
    leading ``'`` (OWASP's recommendation), so Excel, LibreOffice and Google Sheets show it
    as text instead of evaluating it. Every string is treated so — comments, names,
    categories, question ids, model names — since any of them can come from a person.
    Numbers are written as numbers (a float -0.5 stays ``-0.5``); booleans as 1/0,
    datetimes in ISO 8601, None as an empty cell. Quoting is the csv writer's job.
    """
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_PREFIXES) else value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int | float):
        return str(value)
    return csv_cell(str(value))


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """CSV (UTF-8 with BOM for Excel, comma-separated, CRLF) with every cell through
    :func:`csv_cell`: the one CSV writer of the project, so every CSV is safe to open."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buffer.getvalue().encode("utf-8-sig")


def votes_csv(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """The votes as CSV (see :func:`csv_bytes`; one header row)."""
    return csv_bytes(
        CSV_COLUMNS,
        (
            (
                r["question"],
                r["category"],
                r["annotator"],
                r["left"],
                r["right"],
                r["choice"],
                winner_model(r["left"], r["right"], r["choice"]),
                _seconds(r["seconds"]),
                r["comment"],
                r["created_at"],
                r["repeat"],
                r["excluded"],
            )
            for r in rows
        ),
    )


FORGETTING_COLUMNS = (
    "table", "benchmark", "prompt_format", "category", "n", "metric", "original", "adapted",
    "chance", "first", "longest", "majority", "drop", "relative_drop", "drop_low", "drop_high",
    "only_original", "only_adapted", "p", "p_holm", "forgets",
)  # fmt: skip


def forgetting_csv(report: Mapping[str, Any]) -> bytes:
    """What the adapted model lost, as one CSV: a ``benchmark`` row per benchmark and
    category of the report's forgetting table (scores, baselines, drop, its paired interval,
    McNemar p raw and Holm-adjusted), then a ``bits per character`` row per held-out text
    category (``original``/``adapted`` in bits per character, ``drop`` = adapted - original,
    so positive means the adapted model forgot). Empty but for the header without them."""
    rows: list[list[Any]] = []
    for r in (report.get("forgetting") or {}).get("rows") or []:
        rows.append(["benchmark", *(r.get(c) for c in FORGETTING_COLUMNS[1:])])
    for t in (report.get("texts") or {}).get("rows") or []:
        values = {
            "category": t.get("category"), "n": t.get("paragraphs"), "metric": "bits per character",
            "original": t.get("original"), "adapted": t.get("adapted"), "drop": t.get("change"),
            "relative_drop": t.get("relative_change"), "drop_low": t.get("change_low"),
            "drop_high": t.get("change_high"), "forgets": t.get("forgets"),
        }  # fmt: skip
        rows.append(["bits per character", *(values.get(c) for c in FORGETTING_COLUMNS[1:])])
    return csv_bytes(FORGETTING_COLUMNS, rows)


def _seconds(value: Any) -> float | None:
    """Seconds on the page rounded to milliseconds; None (an empty cell) when unknown."""
    if value is None:
        return None
    out = round(float(value), 3)
    return out if math.isfinite(out) else None


def dpo_policy(aggregate: Aggregate) -> dict[str, Any]:
    return {
        "ties": "excluded",
        "both_bad": "excluded",
        "repeat_votes": "excluded (each annotator's first judgment of a pair only)",
        "excluded_answers": "pairs with an answer marked excluded are left out",
        "aggregate": aggregate,
        "aggregate_rule": (
            "one record per vote"
            if aggregate == "none"
            else "one record per question and pair of systems: the system with more decisive "
            "first votes is chosen; pairs with equal decisive votes (or none) are left out"
        ),
    }


def dpo_records(
    rows: Sequence[Mapping[str, Any]],
    answers: Mapping[tuple[int, str], str],
    *,
    aggregate: Aggregate = "none",
) -> list[dict[str, Any]]:
    """Preference records (``prompt``, ``chosen``, ``rejected`` + metadata); see :func:`dpo_policy`."""
    usable = [r for r in rows if not r["repeat"] and not r["excluded"]]
    out: list[dict[str, Any]] = []
    if aggregate == "none":
        for r in usable:
            win = winner_model(r["left"], r["right"], r["choice"])
            if not win:
                continue
            lose = r["right"] if win == r["left"] else r["left"]
            out.append(
                {
                    "prompt": r["prompt"],
                    "chosen": answers[(r["question_pk"], win)],
                    "rejected": answers[(r["question_pk"], lose)],
                    "question_id": r["question"],
                    "category": r["category"],
                    "chosen_model": win,
                    "rejected_model": lose,
                    "annotator": r["annotator"],
                    "vote_id": r["vote_id"],
                }
            )
        return out
    if aggregate != "majority":
        raise ValueError(f"unknown aggregate {aggregate!r}")
    by_pair: dict[tuple[int, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in usable:
        x, y = sorted((r["left"], r["right"]))
        by_pair[(r["question_pk"], x, y)].append(r)
    for (question_pk, x, y), votes in by_pair.items():
        wins = Counter(winner_model(r["left"], r["right"], r["choice"]) for r in votes)
        choices = Counter(r["choice"] for r in votes)
        if wins[x] == wins[y]:
            continue
        win, lose = (x, y) if wins[x] > wins[y] else (y, x)
        first = votes[0]
        out.append(
            {
                "prompt": first["prompt"],
                "chosen": answers[(question_pk, win)],
                "rejected": answers[(question_pk, lose)],
                "question_id": first["question"],
                "category": first["category"],
                "chosen_model": win,
                "rejected_model": lose,
                "votes_chosen": wins[win],
                "votes_rejected": wins[lose],
                "votes_tie": choices["tie"],
                "votes_both_bad": choices["both_bad"],
            }
        )
    out.sort(key=lambda rec: (str(rec["question_id"]), rec["chosen_model"], rec["rejected_model"]))
    return out


def jsonl(records: Iterable[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def json_bytes(data: Any) -> bytes:
    """Indented UTF-8 JSON; NaN and infinity become null (a report cached before they were
    cleaned may hold them), so the file is strict JSON that every parser reads."""
    text = json.dumps(plain(data), ensure_ascii=False, indent=2, allow_nan=False)
    return (text + "\n").encode("utf-8")


def report_json(report: Mapping[str, Any], manifest: Mapping[str, Any]) -> bytes:
    """The JSON export: ``{"manifest": ..., "report": ...}``, the report being its facts
    (:data:`~sbs.analysis.report.META_KEYS`) and every section of the registry, in order
    (None for a section the report lacks)."""
    facts = {k: report[k] for k in META_KEYS if k in report}
    sections = {k: report.get(k) for k in SECTIONS}
    return json_bytes({"manifest": manifest, "report": {**facts, **sections}})


def site_css() -> SafeString:
    """The site's own stylesheet (a file we ship, never user input), inlined into the report."""
    path = finders.find("css/app.css")
    if not path:
        return mark_safe("")
    with open(str(path), encoding="utf-8") as handle:
        return mark_safe(handle.read())  # noqa: S308 - our own static file, not user input


def report_html(
    study: Study,
    report: Mapping[str, Any],
    plots: Mapping[str, str],
    manifest: Mapping[str, Any],
) -> str:
    """A self-contained HTML report: styles inline, plots as data: images, no URL, no script."""
    return render_to_string(
        "analysis/report_export.html",
        {
            "study": study,
            "report": report,
            "plots": plots,
            "manifest": manifest,
            "manifest_json": json.dumps(manifest, ensure_ascii=False, indent=2),
            "css": site_css(),
            "standalone": True,
        },
    )


def zip_bundle(filename: str, data: bytes, manifest: Mapping[str, Any]) -> bytes:
    """A .zip with the data file and ``manifest.json``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(filename, data)
        archive.writestr("manifest.json", json_bytes(manifest))
    return buffer.getvalue()


class ManifestPolicy(StrEnum):
    """Where a format's manifest goes."""

    EMBEDDED = "embedded"  # in the file: the JSON's "manifest" key, the HTML's table
    BESIDE = "beside"  # the page: a .zip with manifest.json; the command: PATH.manifest.json


class Source(StrEnum):
    """What a format is rendered from."""

    VOTES = "votes"  # the current votes, read at once (no bootstrap)
    REPORT = "report"  # a computed report: the cached one (the page), or computed (the command)


@dataclass
class ExportInput:
    """What a renderer reads: the study, the manifest, and the votes or the report."""

    study: Study
    manifest: dict[str, Any]
    rows: list[dict[str, Any]]  # the votes (Source.VOTES), as selectors.vote_export_rows
    report: Mapping[str, Any]  # the report (Source.REPORT)
    plots: Mapping[str, str] | None = None  # the report's plots; None: drawn when asked

    def figures(self) -> Mapping[str, str]:
        """The report's plots in the active language (drawn here when none were given)."""
        if self.plots is None:
            self.plots = report_figures(self.report)
        return self.plots


@dataclass(frozen=True)
class Rendered:
    data: bytes
    policy: dict[str, Any] | None = None  # written into a BESIDE manifest (e.g. what DPO left out)


Renderer = Callable[[ExportInput], Rendered]


@dataclass(frozen=True)
class ExportFormat:
    """One export format: everything the page, the view and the command need to know."""

    key: str  # in the URL and in ``export_report --format``
    label: StrOrPromise  # the download button (lazily translated)
    content_type: str
    filename: str  # of the data file; ``{study}`` is the study's id
    render: Renderer
    manifest: ManifestPolicy
    source: Source

    def data_name(self, study_id: int) -> str:
        return self.filename.format(study=study_id)

    def download_name(self, study_id: int) -> str:
        """The name the page downloads under: the data file's, or a .zip of it."""
        name = self.data_name(study_id)
        return name if self.manifest is ManifestPolicy.EMBEDDED else f"{name}.zip"


def _render_votes_csv(inp: ExportInput) -> Rendered:
    return Rendered(votes_csv(inp.rows))


def _render_dpo(aggregate: Aggregate) -> Renderer:
    def render(inp: ExportInput) -> Rendered:
        records = dpo_records(inp.rows, selectors.answer_texts(inp.study), aggregate=aggregate)
        return Rendered(jsonl(records), {**dpo_policy(aggregate), "records": len(records)})

    return render


def _render_forgetting_csv(inp: ExportInput) -> Rendered:
    return Rendered(forgetting_csv(inp.report))


def _render_report_json(inp: ExportInput) -> Rendered:
    return Rendered(report_json(inp.report, inp.manifest))


def _render_report_html(inp: ExportInput) -> Rendered:
    html = report_html(inp.study, inp.report, inp.figures(), inp.manifest)
    return Rendered(html.encode("utf-8"))


# Every export format, in the order of the page's download buttons.
FORMATS: dict[str, ExportFormat] = {
    f.key: f
    for f in (
        ExportFormat(
            "csv", _("Votes (CSV)"), "text/csv", "study-{study}-votes.csv",
            _render_votes_csv, ManifestPolicy.BESIDE, Source.VOTES,
        ),
        ExportFormat(
            "json", _("All tables (JSON)"), "application/json", "study-{study}-report.json",
            _render_report_json, ManifestPolicy.EMBEDDED, Source.REPORT,
        ),
        ExportFormat(
            "html", _("Report (HTML, offline)"), "text/html", "study-{study}-report.html",
            _render_report_html, ManifestPolicy.EMBEDDED, Source.REPORT,
        ),
        ExportFormat(
            "forgetting", _("Forgetting (CSV)"), "text/csv", "study-{study}-forgetting.csv",
            _render_forgetting_csv, ManifestPolicy.BESIDE, Source.REPORT,
        ),
        ExportFormat(
            "dpo", _("Preferences (DPO JSONL)"), "application/jsonl",
            "study-{study}-dpo-votes.jsonl", _render_dpo("none"), ManifestPolicy.BESIDE,
            Source.VOTES,
        ),
        ExportFormat(
            "dpo-majority", _("Preferences, majority per question"), "application/jsonl",
            "study-{study}-dpo-majority.jsonl", _render_dpo("majority"), ManifestPolicy.BESIDE,
            Source.VOTES,
        ),
    )
}  # fmt: skip


def format_key(fmt: str, aggregate: str = "none") -> str:
    """The key of a format, from the older spelling too (``dpo`` with ``aggregate=majority``
    is ``dpo-majority``)."""
    variant = f"{fmt}-{aggregate}"
    return variant if aggregate != "none" and variant in FORMATS else fmt


@dataclass(frozen=True)
class ExportFile:
    """One export: its format, the data, the data file's name and the manifest it carries."""

    format: ExportFormat
    study_id: int
    filename: str
    data: bytes
    manifest: dict[str, Any]

    @property
    def manifest_embedded(self) -> bool:  # False: the manifest travels beside (zip or sidecar)
        return self.format.manifest is ManifestPolicy.EMBEDDED

    def download(self) -> tuple[bytes, str, str]:
        """What the page sends: (data, file name, content type); a .zip of the data file and
        ``manifest.json`` when the manifest is not embedded."""
        if self.manifest_embedded:
            return self.data, self.filename, f"{self.format.content_type}; charset=utf-8"
        name = self.format.download_name(self.study_id)
        return zip_bundle(self.filename, self.data, self.manifest), name, "application/zip"


def export_file(
    study: Study,
    fmt: str,
    *,
    settings: Mapping[str, int] | None = None,
    report: Mapping[str, Any] | None = None,
    plots: Mapping[str, str] | None = None,
    fingerprint: str = "",
) -> ExportFile:
    """Render ``fmt`` (a key of :data:`FORMATS`) with its manifest.

    A votes format reads the study's current votes and takes the report's ``settings``
    (bootstrap ``rounds`` and ``seed``, :func:`sbs.analysis.services.report_settings`) for
    its manifest; a report format takes the computed ``report``, its
    ``fingerprint`` and, for the HTML, its ``plots`` (drawn here when None).
    """
    f = FORMATS[fmt]
    rows: list[dict[str, Any]] = []
    if f.source is Source.VOTES:
        if settings is None:
            raise ValueError(f"{fmt}: the report settings (rounds, seed) are needed")
        rounds, seed = settings["rounds"], settings["seed"]
        rows = selectors.vote_export_rows(study)
        fingerprint, n_votes = selectors.votes_fingerprint(study), len(rows)
    else:
        if report is None:
            raise ValueError(f"{fmt}: a computed report is needed")
        rounds, seed = report["settings"]["rounds"], report["settings"]["seed"]
        n_votes = report["counts"]["votes"]
    manifest = export_manifest(
        study, fmt=f.key, rounds=rounds, seed=seed, fingerprint=fingerprint, n_votes=n_votes
    )
    out = f.render(ExportInput(study, manifest, rows, report or {}, plots))
    if out.policy is not None:
        if f.manifest is ManifestPolicy.EMBEDDED:
            raise ValueError(f"{fmt}: a policy cannot join a manifest already embedded")
        manifest["policy"] = out.policy
    return ExportFile(f, study.pk, f.data_name(study.pk), out.data, manifest)
