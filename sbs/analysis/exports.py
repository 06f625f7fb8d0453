"""Exports of a study: votes CSV, report JSON, self-contained HTML report, DPO JSONL.

Every export carries a manifest (:func:`export_manifest`): software version, seed,
bootstrap rounds, the question set's sha256, a sha256 over the answers and the votes
fingerprint, so that a report can be traced to its exact inputs and recomputed.

Where the manifest goes:

* ``json`` and ``html``: embedded (the ``manifest`` key; a "Manifest" table).
* ``csv`` and ``dpo``: the page downloads a ``.zip`` holding the data file and
  ``manifest.json``; ``manage.py export_report`` writes ``PATH`` and
  ``PATH.manifest.json`` beside it.

The CSV is UTF-8 with a byte-order mark, so that Excel shows Cyrillic. The DPO file is
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from sbs.analysis import selectors
from sbs.analysis.stats._plain import plain
from sbs.studies.models import Study

FORMATS = ("csv", "json", "html", "dpo")
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
            "bootstrap": "two-way clustered (question x annotator) percentile bootstrap; "
            "Bradley-Terry: multinomial resampling of vote cells",
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
        "excluded_answers": "questions with an answer marked excluded are left out",
        "aggregate": aggregate,
        "aggregate_rule": (
            "one record per vote"
            if aggregate == "none"
            else "one record per question: the model with more decisive first votes is "
            "chosen; questions with equal decisive votes (or none) are left out"
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
    by_question: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for r in usable:
        by_question[r["question_pk"]].append(r)
    for question_pk, votes in by_question.items():
        wins = Counter(winner_model(r["left"], r["right"], r["choice"]) for r in votes)
        choices = Counter(r["choice"] for r in votes)
        models = sorted({votes[0]["left"], votes[0]["right"]})
        x, y = models
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
    out.sort(key=lambda rec: str(rec["question_id"]))
    return out


def jsonl(records: Iterable[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def json_bytes(data: Any) -> bytes:
    """Indented UTF-8 JSON; NaN and infinity become null (a report cached before they were
    cleaned may hold them), so the file is strict JSON that every parser reads."""
    text = json.dumps(plain(data), ensure_ascii=False, indent=2, allow_nan=False)
    return (text + "\n").encode("utf-8")


def report_json(report: Mapping[str, Any], manifest: Mapping[str, Any]) -> bytes:
    """The JSON export: ``{"manifest": ..., "report": every table}``."""
    return json_bytes({"manifest": manifest, "report": report})


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


@dataclass(frozen=True)
class ExportFile:
    """One export: the data, its file name and type, and the manifest it carries."""

    filename: str
    content_type: str
    data: bytes
    manifest: dict[str, Any]
    manifest_embedded: bool  # False: the manifest travels beside the data (zip or sidecar)


def export_votes(
    study: Study, *, fmt: Literal["csv", "dpo"], rounds: int, seed: int, aggregate: Aggregate
) -> ExportFile:
    """The CSV of votes or the DPO JSONL of the study's current votes (no bootstrap needed)."""
    rows = selectors.vote_export_rows(study)
    fingerprint = selectors.votes_fingerprint(study)
    stem = f"study-{study.pk}"
    if fmt == "csv":
        manifest = export_manifest(
            study, fmt="csv", rounds=rounds, seed=seed, fingerprint=fingerprint, n_votes=len(rows)
        )
        return ExportFile(f"{stem}-votes.csv", "text/csv", votes_csv(rows), manifest, False)
    records = dpo_records(rows, selectors.answer_texts(study), aggregate=aggregate)
    policy = {**dpo_policy(aggregate), "records": len(records)}
    manifest = export_manifest(
        study,
        fmt="dpo",
        rounds=rounds,
        seed=seed,
        fingerprint=fingerprint,
        n_votes=len(rows),
        policy=policy,
    )
    return ExportFile(
        f"{stem}-preferences.jsonl", "application/jsonl", jsonl(records), manifest, False
    )


def export_report(
    study: Study,
    *,
    fmt: Literal["json", "html"],
    report: Mapping[str, Any],
    plots: Mapping[str, str],
    fingerprint: str,
) -> ExportFile:
    """The JSON or HTML export of a computed report (manifest embedded)."""
    settings_ = report["settings"]
    manifest = export_manifest(
        study,
        fmt=fmt,
        rounds=settings_["rounds"],
        seed=settings_["seed"],
        fingerprint=fingerprint,
        n_votes=report["counts"]["votes"],
    )
    stem = f"study-{study.pk}-report"
    if fmt == "json":
        return ExportFile(
            f"{stem}.json", "application/json", report_json(report, manifest), manifest, True
        )
    html = report_html(study, report, plots, manifest)
    return ExportFile(f"{stem}.html", "text/html", html.encode("utf-8"), manifest, True)
