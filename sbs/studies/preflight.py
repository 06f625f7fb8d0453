"""Generation settings checked against the two models before a study is created or started.

Three mistakes used to surface only as a failed (or silently odd) generation run:

- "use the chat template" on a model that has none (the question went in as plain text);
- a context shorter than the longest prompt plus the new tokens;
- a minimum of new tokens above the maximum.

What is read, per model: a Hugging Face folder's ``tokenizer_config.json`` (its
``chat_template``, or ``chat_template.jinja`` / ``chat_template.json`` beside it) and
``config.json`` (``max_position_embeddings`` or its synonyms), then the tokenizer itself
counts every question's prompt as the worker will build it. A GGUF file is read through its
conversion folder in ``MODEL_CACHE`` when one exists (every load after the first); otherwise
its own key/values (``tokenizer.chat_template``, ``<architecture>.context_length``) are
scanned, and the prompts are not counted (building a tokenizer from a GGUF takes seconds):
only the new tokens are checked against the context there.

Anything that cannot be read is skipped, never refused: the worker remains the judge.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.utils.translation import gettext as _

from adaptation.generate import GenerationSettings
from sbs.catalog.models import ModelEntry
from sbs.catalog.services import model_path

_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length",
                 "n_ctx")  # fmt: skip


@dataclass(frozen=True)
class ModelFacts:
    """What the files say; ``None`` where they could not tell."""

    has_chat_template: bool | None
    context_length: int | None
    tokenizer_folder: Path | None  # a folder AutoTokenizer can load, when there is one


@dataclass(frozen=True)
class Problem:
    """A refusal for the form: ``field`` is the form field it belongs to (None: the form)."""

    field: str | None
    message: str


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _context_from_config(config: dict[str, Any]) -> int | None:
    for source in (config, config.get("text_config")):
        if not isinstance(source, dict):
            continue
        for key in _CONTEXT_KEYS:
            value = source.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def _folder_facts(folder: Path) -> ModelFacts:
    tokenizer_config = _read_json(folder / "tokenizer_config.json")
    template = tokenizer_config.get("chat_template")
    has_template = bool(template) or any(
        (folder / name).is_file() for name in ("chat_template.jinja", "chat_template.json")
    )
    readable = (folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file()
    return ModelFacts(
        has_chat_template=has_template if readable else None,
        context_length=_context_from_config(_read_json(folder / "config.json")),
        tokenizer_folder=folder if readable else None,
    )


# GGUF value types (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_INTS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}
_STRING, _ARRAY = 8, 9


class _Truncated(Exception):
    pass


def _gguf_metadata(path: Path) -> dict[str, Any]:
    """The string and integer key/values of a GGUF file's header (arrays skipped), or {}
    when it does not parse. Bounded by the file's size; reads no tensor data."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            return _scan_gguf(f, size)
    except (OSError, ValueError, struct.error, UnicodeDecodeError, _Truncated, RecursionError):
        return {}


def _scan_gguf(f: BinaryIO, size: int) -> dict[str, Any]:
    def read(n: int) -> bytes:
        if n < 0 or f.tell() + n > size:
            raise _Truncated
        data = f.read(n)
        if len(data) != n:
            raise _Truncated
        return data

    def u32() -> int:
        return int(struct.unpack("<I", read(4))[0])

    def u64() -> int:
        return int(struct.unpack("<Q", read(8))[0])

    def skip(n: int) -> None:
        if n < 0 or f.tell() + n > size:
            raise _Truncated
        f.seek(n, 1)

    def skip_value(vtype: int, depth: int = 0) -> None:
        if vtype in _FIXED:
            skip(_FIXED[vtype])
        elif vtype == _STRING:
            skip(u64())
        elif vtype == _ARRAY and depth < 4:
            etype, count = u32(), u64()
            if etype in _FIXED:
                skip(count * _FIXED[etype])
            else:
                if count > size:
                    raise _Truncated
                for _index in range(count):
                    skip_value(etype, depth + 1)
        else:
            raise ValueError(f"GGUF value type {vtype}")

    if read(4) != b"GGUF" or u32() not in (2, 3):
        return {}
    u64()  # tensors
    n_kv = u64()
    if n_kv > size // 12:
        return {}
    found: dict[str, Any] = {}
    for _index in range(n_kv):
        key = read(u64()).decode("utf-8")
        vtype = u32()
        if vtype == _STRING:
            length = u64()
            if length > 1 << 20:  # a chat template is a few kB; keep only that it exists
                skip(length)
                found[key] = "…"
            else:
                found[key] = read(length).decode("utf-8", errors="replace")
        elif vtype in _INTS:
            found[key] = int(struct.unpack(_INTS[vtype], read(_FIXED[vtype]))[0])
        else:
            skip_value(vtype)
    return found


def _gguf_facts(entry: ModelEntry, path: Path) -> ModelFacts:
    converted = Path(settings.MODEL_CACHE) / f"gguf-{entry.sha256}"
    if entry.sha256 and (converted / "config.json").is_file():
        return _folder_facts(converted)
    meta = _gguf_metadata(path)
    if not meta:
        return ModelFacts(None, None, None)
    architecture = meta.get("general.architecture")
    context = meta.get(f"{architecture}.context_length") if architecture else None
    return ModelFacts(
        has_chat_template=bool(meta.get("tokenizer.chat_template")),
        context_length=context if isinstance(context, int) and context > 0 else None,
        tokenizer_folder=None,
    )


def model_facts(entry: ModelEntry) -> ModelFacts:
    """What the files say; an ensemble of task adapters speaks with its base's tokenizer,
    template and context (its parent's files)."""
    if entry.kind == ModelEntry.Kind.ENSEMBLE and entry.parent is not None:
        return model_facts(entry.parent)
    path = model_path(entry)
    if entry.kind == ModelEntry.Kind.GGUF:
        gguf = path if path.is_file() else next(iter(sorted(path.glob("*.gguf"))), None)
        return _gguf_facts(entry, gguf) if gguf else ModelFacts(None, None, None)
    return _folder_facts(path) if path.is_dir() else ModelFacts(None, None, None)


def _longest_prompt(
    folder: Path, questions: Sequence[tuple[str, str]], settings_: GenerationSettings
) -> tuple[str, int] | None:
    """(question id, prompt tokens) of the longest prompt, built as the worker builds it
    (``adaptation.generate.render_prompt`` and its tokenizer call); None if unreadable."""
    from transformers import AutoTokenizer

    import adaptation.modelio  # noqa: F401  (offline mode for transformers)

    if not questions:
        return None
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        templated = settings_.use_chat_template and getattr(tokenizer, "chat_template", None)
        texts = []
        for _id, text in questions:
            if templated:
                messages = []
                if settings_.system_prompt:
                    messages.append({"role": "system", "content": settings_.system_prompt})
                messages.append({"role": "user", "content": text})
                text = str(
                    tokenizer.apply_chat_template(
                        messages, add_generation_prompt=True, tokenize=False
                    )
                )
            texts.append(text)
        ids = tokenizer(texts, add_special_tokens=not settings_.use_chat_template)["input_ids"]
    except Exception:  # noqa: BLE001 - a tokenizer that does not load is the worker's to report
        return None
    lengths = [len(row) for row in ids]
    longest = max(range(len(lengths)), key=lengths.__getitem__)
    return questions[longest][0], lengths[longest]


def generation_problems(
    *,
    models: Sequence[ModelEntry],
    questions: Sequence[tuple[str, str]],
    generation: dict[str, Any],
) -> list[Problem]:
    """Why these settings would fail on these models, in words for the researcher; [] when
    nothing is wrong (or nothing could be read). ``questions``: (id, text) pairs."""
    max_new = int(generation.get("max_new_tokens", 0) or 0)
    min_new = int(generation.get("min_new_tokens", 0) or 0)
    if min_new > max_new:
        return [
            Problem(
                "min_new_tokens",
                _(
                    "The minimum of new tokens (%(min)d) is above the maximum (%(max)d): "
                    "lower the minimum or raise the maximum."
                )
                % {"min": min_new, "max": max_new},
            )
        ]
    settings_ = GenerationSettings.from_dict(generation)
    problems: list[Problem] = []
    for entry in models:
        facts = model_facts(entry)
        if settings_.use_chat_template and facts.has_chat_template is False:
            problems.append(
                Problem(
                    "use_chat_template",
                    _(
                        "%(model)s has no chat template, and “Use the chat template” is on: "
                        "turn it off (the question is then given as plain text) or choose "
                        "another model."
                    )
                    % {"model": entry.name},
                )
            )
            continue
        if facts.context_length is None:
            continue
        longest = (
            _longest_prompt(facts.tokenizer_folder, questions, settings_)
            if facts.tokenizer_folder is not None
            else None
        )
        if longest is None:
            if max_new >= facts.context_length:
                problems.append(
                    Problem(
                        "max_new_tokens",
                        _(
                            "%(model)s reads at most %(context)d tokens, prompt included: "
                            "%(new)d new tokens leave no room for the question. Lower the "
                            "maximum of new tokens."
                        )
                        % {"model": entry.name, "context": facts.context_length, "new": max_new},
                    )
                )
            continue
        question, prompt = longest
        if prompt + max_new > facts.context_length:
            room = facts.context_length - prompt
            problems.append(
                Problem(
                    "max_new_tokens",
                    _(
                        "%(model)s reads at most %(context)d tokens, but the longest prompt "
                        "(question %(question)s, %(prompt)d tokens) plus %(new)d new tokens "
                        "makes %(total)d. Lower the maximum of new tokens to %(room)d or less, "
                        "or shorten the question."
                    )
                    % {
                        "model": entry.name,
                        "context": facts.context_length,
                        "question": question,
                        "prompt": prompt,
                        "new": max_new,
                        "total": prompt + max_new,
                        "room": max(room, 0),
                    },
                )
            )
    return problems
