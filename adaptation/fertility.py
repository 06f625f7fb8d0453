"""Tokenizer fertility on a text: tokens per word and characters per token.

    tokens_per_word = tokens(text) / words(text)       chars_per_token = len(text) / tokens(text)

Words are maximal runs of letters or digits (``\\w+`` minus ``_``, with inner hyphens and
apostrophes), so the count depends only on the text, never on the tokenizer. Texts are
tokenised without special tokens, line by line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")


@dataclass(frozen=True)
class FertilityConfig:
    probe_words: tuple[str, ...] = ("интеллект",)


@dataclass(frozen=True)
class FertilityReport:
    words: int
    tokens: int
    chars: int
    probes: dict[str, list[str]] = field(default_factory=dict)  # word -> its pieces

    @property
    def tokens_per_word(self) -> float:
        return self.tokens / self.words if self.words else 0.0

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "words": self.words,
            "tokens": self.tokens,
            "chars": self.chars,
            "tokens_per_word": round(self.tokens_per_word, 4),
            "chars_per_token": round(self.chars_per_token, 4),
            "probes": self.probes,
        }


def count_words(text: str) -> int:
    return len(WORD.findall(text))


def count_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def pieces(tokenizer: Any, word: str) -> list[str]:
    """The surface pieces a tokenizer splits ``word`` into, e.g. ``['инте', 'лле', 'кт']``.

    Pieces come from the fast tokenizer's character offsets, so byte-level tokens that split a
    character still show as readable text (a character split across tokens shows once).
    """
    encoded = tokenizer(word, add_special_tokens=False, return_offsets_mapping=True)
    out: list[str] = []
    covered = 0
    for start, end in encoded["offset_mapping"]:
        start = max(start, covered)
        if end > start:
            out.append(word[start:end])
            covered = end
    return out


def fertility(
    tokenizer: Any, texts: str | Iterable[str], config: FertilityConfig = FertilityConfig()
) -> FertilityReport:
    """Fertility of ``tokenizer`` over ``texts`` (a string is split into lines)."""
    lines: Sequence[str] = texts.splitlines() if isinstance(texts, str) else list(texts)
    words = tokens = chars = 0
    for line in lines:
        if not line.strip():
            continue
        words += count_words(line)
        tokens += count_tokens(tokenizer, line)
        chars += len(line)
    return FertilityReport(
        words=words,
        tokens=tokens,
        chars=chars,
        probes={w: pieces(tokenizer, w) for w in config.probe_words},
    )
