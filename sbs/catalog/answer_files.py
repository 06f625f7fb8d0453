"""Parse a file of pre-generated answers (CSV or JSONL) completely before anything is written.

One row per (system, question). Keys / columns:

* ``question_id`` (required): the question's ``id`` in its question set;
* ``system`` (required): the name the answers go under (vLLM, an API model, an old run);
* ``answer`` (required): the text annotators will read (Markdown);
* ``prompt_tokens``, ``new_tokens`` (or ``tokens``): optional non-negative integers;
* ``seconds``: optional, the generation time of this answer (finite, >= 0);
* ``metadata``: optional, a JSON object (in CSV a JSON text); every other key or column
  goes into the metadata too.

Missing numbers stay missing (None): the report never invents a speed. Problems are collected
with their line, as for question files (:mod:`sbs.questions.importers`); whether the answers
cover the question set is :func:`coverage_errors`'s, once the set is known.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from sbs.questions.importers import (
    MAX_FIELD_CHARS,
    FileFormat,
    LineError,
    QuestionFileError,
    parse_rows,
)

REQUIRED = ("question_id", "system", "answer")
KNOWN = (*REQUIRED, "prompt_tokens", "new_tokens", "tokens", "seconds", "metadata")
MAX_ROWS = 200_000
MAX_SYSTEM_CHARS = 200
MAX_METADATA_CHARS = 10_000


class AnswerFileError(QuestionFileError):
    """The answer file was refused; ``errors`` lists every problem found, with its line."""


@dataclass(frozen=True)
class ParsedAnswer:
    line: int
    question_id: str
    system: str
    text: str
    prompt_tokens: int | None = None
    new_tokens: int | None = None
    seconds: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _count(value: object, key: str, line: int, errors: list[LineError]) -> int | None:
    """A token count: absent/blank -> None; an integer >= 0 (JSON number or digits) or an error."""
    if _blank(value):
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or number < 0:
        errors.append(
            LineError(
                line,
                _("“%(key)s” must be a whole number of 0 or more, not %(value)s")
                % {"key": key, "value": json.dumps(value, ensure_ascii=False)[:40]},
            )
        )
        return None
    return number


def _seconds(value: object, line: int, errors: list[LineError]) -> float | None:
    """Seconds: absent/blank -> None; a finite number >= 0 or an error."""
    if _blank(value):
        return None
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number < 0:
        errors.append(
            LineError(
                line,
                _("“seconds” must be a number of 0 or more, not %(value)s")
                % {"value": json.dumps(value, ensure_ascii=False)[:40]},
            )
        )
        return None
    return number


def _metadata(raw: Mapping[str, object], line: int, errors: list[LineError]) -> dict[str, Any]:
    """The ``metadata`` object (a JSON text in CSV) plus the keys or columns not known here."""
    value = raw.get("metadata")
    meta: dict[str, Any] = {}
    if isinstance(value, str) and value.strip():
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            errors.append(LineError(line, _("“metadata” must be a JSON object")))
            return {}
    if isinstance(value, dict):
        meta.update(value)
    elif not _blank(value):
        errors.append(LineError(line, _("“metadata” must be a JSON object")))
        return {}
    extra = {k: v for k, v in raw.items() if k not in KNOWN and v is not None and v != ""}
    meta.update(extra)
    if len(json.dumps(meta, ensure_ascii=False)) > MAX_METADATA_CHARS:
        errors.append(
            LineError(
                line,
                _("the metadata is longer than %(n)d characters") % {"n": MAX_METADATA_CHARS},
            )
        )
        return {}
    return meta


def _text(raw: Mapping[str, object], key: str, line: int, errors: list[LineError]) -> str:
    value = raw.get(key)
    if isinstance(value, (dict, list)):
        errors.append(LineError(line, _("field “%(key)s” must be text") % {"key": key}))
        return ""
    return "" if value is None else str(value)


def _row_to_answer(
    raw: dict[str, object], line: int, _number: int, errors: list[LineError]
) -> ParsedAnswer | None:
    before = len(errors)
    question_id = _text(raw, "question_id", line, errors).strip()
    system = " ".join(_text(raw, "system", line, errors).split())
    text = _text(raw, "answer", line, errors).strip()
    if not question_id:
        errors.append(LineError(line, _("empty question id")))
    if not system:
        errors.append(LineError(line, _("empty system name")))
    elif len(system) > MAX_SYSTEM_CHARS:
        errors.append(
            LineError(
                line,
                _("the system name is longer than %(n)d characters") % {"n": MAX_SYSTEM_CHARS},
            )
        )
    if not text:
        errors.append(
            LineError(
                line,
                _(
                    "empty answer: write the text annotators should see "
                    "(for a system that gave none, e.g. “(no answer)”)"
                ),
            )
        )
    elif len(text) > MAX_FIELD_CHARS:
        errors.append(
            LineError(
                line, _("the answer is longer than %(n)d characters") % {"n": MAX_FIELD_CHARS}
            )
        )
    if "\x00" in text or "\x00" in system:
        errors.append(LineError(line, _("the row contains a NUL character")))
    new_key = "new_tokens" if not _blank(raw.get("new_tokens")) else "tokens"
    parsed = ParsedAnswer(
        line=line,
        question_id=question_id,
        system=system,
        text=text,
        prompt_tokens=_count(raw.get("prompt_tokens"), "prompt_tokens", line, errors),
        new_tokens=_count(raw.get(new_key), new_key, line, errors),
        seconds=_seconds(raw.get("seconds"), line, errors),
        metadata=_metadata(raw, line, errors),
    )
    return parsed if len(errors) == before else None


def parse_answers(data: bytes, file_format: FileFormat) -> list[ParsedAnswer]:
    """Every answer of the file, or an :class:`AnswerFileError` listing every problem: bad
    rows, and the same (system, question) answered twice."""
    errors: list[LineError] = []
    rows = parse_rows(data, file_format, errors, required=REQUIRED, convert=_row_to_answer)
    seen: dict[tuple[str, str], int] = {}
    for line, answer in rows:
        key = (answer.system, answer.question_id)
        if key in seen:
            errors.append(
                LineError(
                    line,
                    _("“%(system)s” answers question “%(id)s” twice (first on line %(first)d)")
                    % {"system": answer.system, "id": answer.question_id, "first": seen[key]},
                )
            )
        else:
            seen[key] = line
    if not rows and not errors:
        errors.append(LineError(0, _("the file contains no answers")))
    if len(rows) > MAX_ROWS:
        errors.append(LineError(0, _("more than %(n)d answers") % {"n": MAX_ROWS}))
    if errors:
        raise AnswerFileError(sorted(errors, key=lambda e: e.line))
    return [answer for _, answer in rows]


def quoted_ids(ids: Sequence[str], n: int = 5) -> str:
    """The first ``n`` ids in quotes, an ellipsis after them when there are more."""
    shown = ", ".join(f"“{i}”" for i in ids[:n])
    return shown + (" …" if len(ids) > n else "")


def coverage_errors(
    answers: Sequence[ParsedAnswer], question_ids: Sequence[str]
) -> list[LineError]:
    """Answers to questions the set lacks (by line), and, per system, the set's questions
    it leaves unanswered: every system must answer every question of the set."""
    known = set(question_ids)
    errors = [
        LineError(
            a.line,
            _("unknown question id “%(id)s”: the question set has no such question")
            % {"id": a.question_id},
        )
        for a in answers
        if a.question_id not in known
    ]
    answered: dict[str, set[str]] = defaultdict(set)
    for a in answers:
        answered[a.system].add(a.question_id)
    for system in sorted(answered):
        missing = [q for q in question_ids if q not in answered[system]]
        if missing:
            errors.append(
                LineError(
                    0,
                    _(
                        "“%(system)s” has no answer for %(n)d of the %(total)d questions "
                        "(%(ids)s): every system must answer every question of the set"
                    )
                    % {
                        "system": system,
                        "n": len(missing),
                        "total": len(question_ids),
                        "ids": quoted_ids(missing),
                    },
                )
            )
    return errors
