"""Parse a question file or a benchmark file (CSV or JSONL) completely before anything is
written.

Columns / keys: ``question`` (required), ``category``, ``reference``, ``id`` (optional,
stable; defaults to the 1-based row number). UTF-8 with or without a BOM. Every problem is
collected with its line number, so one bad file yields one complete list of errors.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal, TypeVar

from django.conf import settings
from django.utils.translation import gettext as _

from adaptation import benchmarks
from adaptation.benchmarks import MCItem

MAX_FILE_BYTES = 20 * 1024 * 1024  # when settings.QUESTION_FILE_MAX_BYTES is absent
MAX_QUESTIONS = 50_000
MAX_FIELD_CHARS = 100_000
FIELDS = ("id", "question", "category", "reference")

FileFormat = Literal["csv", "jsonl"]
T = TypeVar("T")


@dataclass(frozen=True)
class ParsedQuestion:
    external_id: str
    text: str
    category: str
    reference: str


@dataclass(frozen=True)
class LineError:
    line: int  # 1-based line in the file; 0 for the file as a whole
    message: str

    def __str__(self) -> str:
        if not self.line:
            return self.message
        return _("line %(line)d: %(message)s") % {"line": self.line, "message": self.message}


class QuestionFileError(ValueError):
    """The file was refused; ``errors`` lists every problem found, with its line."""

    def __init__(self, errors: list[LineError]) -> None:
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:10])
        more = _(" (and %(n)d more)") % {"n": len(errors) - 10} if len(errors) > 10 else ""
        super().__init__(shown + more)


def detect_format(filename: str) -> FileFormat:
    lowered = filename.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise QuestionFileError(
        [
            LineError(
                0, _("unsupported file type “%(name)s”: use .csv or .jsonl") % {"name": filename}
            )
        ]
    )


def decode_utf8(data: bytes) -> str:
    """Strict UTF-8 (a BOM is dropped). cp1251 and other encodings are refused by line."""
    limit = int(getattr(settings, "QUESTION_FILE_MAX_BYTES", MAX_FILE_BYTES))
    if len(data) > limit:
        raise QuestionFileError(
            [
                LineError(
                    0,
                    _("the file is %(size)d bytes; the limit is %(limit)d")
                    % {"size": len(data), "limit": limit},
                )
            ]
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise QuestionFileError(
            [
                LineError(
                    line,
                    _(
                        "the file is not UTF-8 (byte 0x%(byte)02x); save it as UTF-8 (it may be cp1251)"
                    )
                    % {"byte": data[exc.start]},
                )
            ]
        ) from None


def _row_to_question(
    raw: dict[str, object], line: int, row_number: int, errors: list[LineError]
) -> ParsedQuestion | None:
    def text(key: str) -> str:
        value = raw.get(key)
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            errors.append(LineError(line, _("field “%(key)s” must be text") % {"key": key}))
            return ""
        return str(value).strip()

    question = text("question")
    if not question:
        errors.append(LineError(line, _("empty question")))
        return None
    values = {k: text(k) for k in FIELDS}
    for key, value in values.items():
        if len(value) > MAX_FIELD_CHARS:
            errors.append(
                LineError(
                    line,
                    _("field “%(key)s” is longer than %(n)d characters")
                    % {"key": key, "n": MAX_FIELD_CHARS},
                )
            )
    if "\x00" in question:
        errors.append(LineError(line, _("the question contains a NUL character")))
    return ParsedQuestion(
        external_id=values["id"] or str(row_number),
        text=question,
        category=values["category"][:100],
        reference=values["reference"],
    )


RowConverter = Callable[[dict[str, object], int, int, list[LineError]], T | None]


def _parse_csv(
    text: str, errors: list[LineError], required: Sequence[str], convert: RowConverter[T]
) -> list[tuple[int, T]]:
    """(line, row) for each CSV row ``convert`` accepts; header names are case-folded."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [key for key in required if key not in header]
    for key in missing:
        errors.append(
            LineError(
                1,
                _("missing column “%(key)s” (found: %(found)s)")
                % {"key": key, "found": ", ".join(header)},
            )
        )
    if missing:
        return []
    reader.fieldnames = header
    rows: list[tuple[int, T]] = []
    try:
        for number, raw in enumerate(reader, start=1):
            line = reader.line_num
            if None in raw:
                errors.append(LineError(line, _("more cells than columns in the header")))
                continue
            parsed = convert(dict(raw), line, number, errors)
            if parsed is not None:
                rows.append((line, parsed))
    except csv.Error as exc:
        errors.append(LineError(reader.line_num, _("broken CSV: %(error)s") % {"error": exc}))
    return rows


def _parse_jsonl(
    text: str, errors: list[LineError], required: Sequence[str], convert: RowConverter[T]
) -> list[tuple[int, T]]:
    """(line, row) for each JSON object line ``convert`` accepts; blank lines are skipped."""
    rows: list[tuple[int, T]] = []
    number = 0
    for line, chunk in enumerate(text.splitlines(), start=1):
        if not chunk.strip():
            continue
        number += 1
        try:
            raw = json.loads(chunk)
        except json.JSONDecodeError as exc:
            errors.append(LineError(line, _("invalid JSON: %(error)s") % {"error": exc.msg}))
            continue
        except RecursionError:  # brackets nested deeper than the parser's recursion limit
            errors.append(LineError(line, _("invalid JSON: nested too deeply")))
            continue
        if not isinstance(raw, dict):
            errors.append(LineError(line, _("each line must be a JSON object")))
            continue
        missing = [key for key in required if key not in raw]
        if missing:
            for key in missing:
                errors.append(LineError(line, _("missing key “%(key)s”") % {"key": key}))
            continue
        parsed = convert(raw, line, number, errors)
        if parsed is not None:
            rows.append((line, parsed))
    return rows


def parse_rows(
    data: bytes,
    file_format: FileFormat,
    errors: list[LineError],
    *,
    required: Sequence[str],
    convert: RowConverter[T],
) -> list[tuple[int, T]]:
    """Decode (strict UTF-8) and read every row of a CSV or JSONL file; problems go to
    ``errors`` with their line, and the rows ``convert`` accepted come back with theirs."""
    text = decode_utf8(data)
    if file_format == "csv":
        return _parse_csv(text, errors, required, convert)
    return _parse_jsonl(text, errors, required, convert)


def parse_questions(data: bytes, file_format: FileFormat) -> list[ParsedQuestion]:
    """All questions of the file, or a :class:`QuestionFileError` listing every problem."""
    errors: list[LineError] = []
    rows = parse_rows(data, file_format, errors, required=["question"], convert=_row_to_question)
    seen: dict[str, int] = {}
    for line, parsed in rows:
        if parsed.external_id in seen:
            errors.append(
                LineError(
                    line,
                    _("duplicate id “%(id)s” (first on line %(first)d)")
                    % {"id": parsed.external_id, "first": seen[parsed.external_id]},
                )
            )
        else:
            seen[parsed.external_id] = line
    if not rows and not errors:
        errors.append(LineError(0, _("the file contains no questions")))
    if len(rows) > MAX_QUESTIONS:
        errors.append(LineError(0, _("more than %(n)d questions") % {"n": MAX_QUESTIONS}))
    if errors:
        raise QuestionFileError(sorted(errors, key=lambda e: e.line))
    return [parsed for _, parsed in rows]


def content_sha256(questions: list[ParsedQuestion]) -> str:
    """sha256 of the canonical JSON of the questions, independent of the file's format."""
    canonical = json.dumps([asdict(q) for q in questions], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_benchmark(data: bytes, file_format: FileFormat) -> list[MCItem]:
    """Every item of a multiple-choice file (``adaptation.benchmarks.parse_items``: JSONL
    with ``question``, ``choices``, ``answer``, optional ``id``, ``category``, ``context``;
    CSV with ``choice_1 .. choice_N``), or a :class:`QuestionFileError` listing every
    problem with its line, translated."""
    text = decode_utf8(data)
    try:
        return benchmarks.parse_items(text, file_format)
    except benchmarks.BenchmarkFileError as exc:
        raise QuestionFileError([LineError(p.line, p.text(_)) for p in exc.problems]) from None
