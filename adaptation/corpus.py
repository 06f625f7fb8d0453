"""Russian training text: the wiki-ru-wordnet SQLite file and user ``.txt`` / ``.jsonl`` files.

The ``wiki-ru-wordnet`` PyPI package ships Russian Wiktionary definitions with usage examples
(``{{пример|...}}`` templates) in wiki markup. :func:`wordnet_lines` yields one plain-text line
per distinct definition and per distinct example. The train/held-out split is deterministic:
a line is held out when ``sha256(seed:line) / 2**64 < heldout_fraction``, so it never depends
on reading order or on the other lines.
"""

from __future__ import annotations

import hashlib
import html
import importlib.metadata
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

WORDNET_DISTRIBUTION = "wiki-ru-wordnet"
WORDNET_DB = "wiki_ru_wordnet/database/wikiwordnet.db"


@dataclass(frozen=True)
class CorpusConfig:
    include_definitions: bool = True
    include_examples: bool = True
    min_chars: int = 20  # shorter lines (stubs such as "мужское имя") are dropped
    max_lines: int | None = None  # stop after this many distinct lines (tests, quick runs)
    heldout_fraction: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.heldout_fraction < 1:
            raise ValueError("heldout_fraction must be in [0, 1)")


@dataclass(frozen=True)
class CorpusStats:
    train_lines: int
    heldout_lines: int
    train_chars: int
    heldout_chars: int
    train_path: Path
    heldout_path: Path


def wordnet_db_path() -> Path:
    """The SQLite file shipped by the installed ``wiki-ru-wordnet`` distribution."""
    try:
        dist = importlib.metadata.distribution(WORDNET_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError("pip install wiki-ru-wordnet to get the Russian corpus") from exc
    path = Path(str(dist.locate_file(WORDNET_DB)))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the {WORDNET_DISTRIBUTION} package")
    return path


# Templates whose first argument is running text; every other template is a label
# ({{разг.|ru}}, {{помета|...}}) and is dropped.
_KEEP_ARG = {"выдел", "=", "lang", "w", "курсив", "comment"}
_FIXED = {"--": "—", "-": "—", "итп": "и т. п.", "итд": "и т. д.", "и т. п.": "и т. п."}
_PREFIXED = {
    "действие": "действие по значению глагола ",
    "свойство": "свойство по значению прилагательного ",
    "состояние": "состояние по значению прилагательного ",
    "соотн.": "связанный, соотносящийся по значению с ",
}


def _split_template(body: str) -> list[str]:
    """Split a template body on top-level ``|`` (not inside nested ``{{ }}`` or ``[[ ]]``)."""
    parts, depth, current = [], 0, []
    i = 0
    while i < len(body):
        two = body[i : i + 2]
        if two in ("{{", "[["):
            depth += 1
            current.append(two)
            i += 2
            continue
        if two in ("}}", "]]") and depth:
            depth -= 1
            current.append(two)
            i += 2
            continue
        if body[i] == "|" and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(body[i])
        i += 1
    parts.append("".join(current))
    return parts


def _templates(text: str, examples: list[str]) -> str:
    """Replace templates innermost-first; ``пример`` arguments are moved into ``examples``."""
    pattern = re.compile(r"\{\{([^{}]*)\}\}")
    while True:
        match = pattern.search(text)
        if match is None:
            return text
        parts = _split_template(match.group(1))
        name = parts[0].strip()
        args = [p for p in parts[1:] if "=" not in p or name == "="]
        if name == "пример":
            if args and args[0].strip():
                examples.append(args[0])
            replacement = ""
        elif name in _FIXED:
            replacement = _FIXED[name]
        elif name in _PREFIXED and args:
            replacement = _PREFIXED[name] + args[0]
        elif name in _KEEP_ARG and args:
            replacement = args[-1] if name == "lang" else args[0]
        else:
            replacement = ""
        text = text[: match.start()] + replacement + text[match.end() :]


def _clean(text: str) -> str:
    text = re.sub(r"\[\[([^\[\]|]*)\|([^\[\]]*)\]\]", r"\2", text)
    text = re.sub(r"\[\[([^\[\]]*)\]\]", r"\1", text)
    text = re.sub(r"<ref[^>]*>.*?</ref>|<ref[^>]*/>", "", text, flags=re.S)
    text = re.sub(r"<[^<>]{0,40}>", "", text)
    text = html.unescape(text).replace("''", "").replace("\xa0", " ").replace("\u0301", "")
    text = re.sub(r"\s*\|\|\s*,?", "; ", text)  # "||" separates senses of a definition
    text = re.sub(r"[{}\[\]|]", "", text)
    text = re.sub(r"\s+", " ", text).strip(" #;:,")
    return re.sub(r"\s+([,.;:!?])", r"\1", text)


def strip_wiki(markup: str) -> tuple[str, list[str]]:
    """Plain text of a Wiktionary definition and the plain texts of its examples."""
    raw_examples: list[str] = []
    definition = _clean(_templates(markup, raw_examples))
    examples = [_clean(_templates(e, [])) for e in raw_examples]
    return definition, [e for e in examples if e]


def wordnet_lines(config: CorpusConfig = CorpusConfig()) -> Iterator[str]:
    """Distinct plain-text definitions and examples from the wiki-ru-wordnet database."""
    db = wordnet_db_path()
    seen: set[str] = set()
    emitted = 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        for (row,) in conn.execute("SELECT definition FROM synsets ORDER BY rowid"):
            fields = row.split("~")
            markup = "~".join(fields[4:-2]) if len(fields) >= 7 else row
            definition, examples = strip_wiki(markup)
            candidates = ([definition] if config.include_definitions else []) + (
                examples if config.include_examples else []
            )
            for line in candidates:
                if len(line) < config.min_chars or line in seen:
                    continue
                if not re.search("[а-яё]", line, re.I):
                    continue
                seen.add(line)
                yield line
                emitted += 1
                if config.max_lines is not None and emitted >= config.max_lines:
                    return


def read_text_file(path: Path) -> Iterator[str]:
    """Non-empty lines of a ``.txt`` file, or the ``text`` field of each ``.jsonl`` record."""
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            if path.suffix == ".jsonl":
                if not raw.strip():
                    continue
                record = json.loads(raw)
                if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                    raise ValueError(f"{path}:{number}: each JSON line needs a string 'text'")
                line = record["text"].strip()
            else:
                line = raw.rstrip("\n").strip()
            if line:
                yield line


def iter_texts(paths: Sequence[Path], *, wordnet: CorpusConfig | None = None) -> Iterator[str]:
    """User files in order, then (when ``wordnet`` is given) the wiki-ru-wordnet lines."""
    for path in paths:
        yield from read_text_file(Path(path))
    if wordnet is not None:
        yield from wordnet_lines(wordnet)


def is_heldout(line: str, fraction: float, seed: int = 0) -> bool:
    """``sha256(f"{seed}:{line}")`` read as a fraction of 2**64 is below ``fraction``."""
    digest = hashlib.sha256(f"{seed}:{line}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split_lines(
    lines: Iterable[str], fraction: float, seed: int = 0
) -> tuple[list[str], list[str]]:
    """(train, held-out) by :func:`is_heldout`; order within each part is preserved."""
    train, heldout = [], []
    for line in lines:
        (heldout if is_heldout(line, fraction, seed) else train).append(line)
    return train, heldout


def write_corpus(
    out_dir: Path,
    config: CorpusConfig = CorpusConfig(),
    *,
    files: Sequence[Path] = (),
    use_wordnet: bool = True,
) -> CorpusStats:
    """Write ``train.txt`` and ``heldout.txt`` (one line of text per line) under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_path, heldout_path = out_dir / "train.txt", out_dir / "heldout.txt"
    counts = {"train": [0, 0], "heldout": [0, 0]}
    with (
        train_path.open("w", encoding="utf-8") as train,
        heldout_path.open("w", encoding="utf-8") as held,
    ):
        for line in iter_texts(files, wordnet=config if use_wordnet else None):
            line = line.replace("\n", " ")
            part = "heldout" if is_heldout(line, config.heldout_fraction, config.seed) else "train"
            (held if part == "heldout" else train).write(line + "\n")
            counts[part][0] += 1
            counts[part][1] += len(line)
    return CorpusStats(
        train_lines=counts["train"][0],
        heldout_lines=counts["heldout"][0],
        train_chars=counts["train"][1],
        heldout_chars=counts["heldout"][1],
        train_path=train_path,
        heldout_path=heldout_path,
    )
