"""How much an answer repeats itself: the distinct n-gram share.

``distinct_n(text) = |{n-grams of text}| / #(n-grams of text)`` over word and punctuation
tokens (``\\w+`` runs and single other non-space characters, case-folded). A fluent answer
scores near 1; a greedy loop ("толькох, толькох, толькох…") near 0. Texts shorter than ``n``
tokens have no n-grams and no share (None); :func:`mean_distinct_share` averages the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokens(text: str) -> list[str]:
    """Word runs and single punctuation characters, case-folded."""
    return [t.casefold() for t in _TOKEN.findall(text)]


def distinct_share(text: str, n: int = 3) -> float | None:
    """Distinct n-grams over all n-grams of ``text``; None when it has fewer than ``n`` tokens."""
    if n < 1:
        raise ValueError("n must be >= 1")
    words = tokens(text)
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None


def mean_distinct_share(texts: Iterable[str], n: int = 3) -> float | None:
    """The mean :func:`distinct_share` of the texts that have one; None when none has."""
    shares = [s for s in (distinct_share(t, n) for t in texts) if s is not None]
    return sum(shares) / len(shares) if shares else None
