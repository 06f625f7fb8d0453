"""Templates and near-duplicates in a line corpus, and a held-out split that respects them.

Dictionary text repeats itself: thousands of Wiktionary definitions read "… — одна из
многочисленных рек …" with one name changed. Trained on as they are, such lines teach the
template; split line by line, the held-out part shares them with training and measures
memorised boilerplate instead of Russian.

* A **template** is a word 6-gram (lower-cased ``\\w+`` words) found in at least
  ``min_lines`` lines; a line's template is its most frequent one (ties: the smaller string).
* **Deduplication** keeps at most ``per_template`` lines of each template: the ones whose
  ``sha256(seed:line)`` is smallest, so the choice does not depend on reading order.
* **Split**: a line is held out when ``sha256(seed:key) / 2**64 < fraction``, where the key
  is its template, else the line itself, so all the lines of a template land on one side.
* **Overlap**: the share of held-out lines with at least half of their 6-grams in training
  (the measure of leakage the split is meant to bring down).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

N = 6  # words per shingle


def shingles(line: str, n: int = N) -> list[str]:
    """The line's word ``n``-grams (lower-cased ``\\w+`` words joined by a space)."""
    words = re.findall(r"\w+", line.lower())
    return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]


def _fraction(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class DedupConfig:
    min_lines: int = 50  # a 6-gram in this many lines is a template
    per_template: int = 100  # lines kept per template
    heldout_fraction: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        if self.min_lines < 2 or self.per_template < 1 or not 0 <= self.heldout_fraction < 1:
            raise ValueError("min_lines >= 2, per_template >= 1, heldout_fraction in [0, 1)")


@dataclass
class DedupReport:
    lines: int = 0
    templates: int = 0
    templated_lines: int = 0  # lines that have a template (before deduplication)
    dropped: int = 0  # lines over their template's quota
    largest_template: str = ""
    largest_share_before: float = 0.0  # of all lines
    largest_share_after: float = 0.0  # of the kept lines
    train_lines: int = 0
    heldout_lines: int = 0
    heldout_overlap: float = 0.0  # held-out lines with >= half their 6-grams in training

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def line_templates(lines: Sequence[str], min_lines: int) -> list[str | None]:
    """Each line's template (its most frequent 6-gram found in ``min_lines`` lines) or None."""
    per_line = [set(shingles(line)) for line in lines]
    counts: Counter[str] = Counter()
    for grams in per_line:
        counts.update(grams)
    out: list[str | None] = []
    for grams in per_line:
        frequent = [g for g in grams if counts[g] >= min_lines]
        out.append(min(frequent, key=lambda g: (-counts[g], g)) if frequent else None)
    return out


def heldout_overlap(train: Sequence[str], heldout: Sequence[str]) -> float:
    """Share of ``heldout`` lines with at least half of their 6-grams in ``train``."""
    seen = {g for line in train for g in shingles(line)}
    measured = [grams for grams in map(shingles, heldout) if grams]
    if not measured:
        return 0.0
    leaked = sum(sum(g in seen for g in grams) * 2 >= len(grams) for grams in measured)
    return leaked / len(measured)


def dedup_and_split(
    lines: Sequence[str], config: DedupConfig = DedupConfig()
) -> tuple[list[str], list[str], DedupReport]:
    """(train, held-out, report): templates capped, split by template (module docstring)."""
    report = DedupReport(lines=len(lines))
    templates = line_templates(lines, config.min_lines)
    sizes = Counter(t for t in templates if t is not None)
    report.templates = len(sizes)
    report.templated_lines = sum(sizes.values())
    if sizes:
        top, top_size = max(sizes.items(), key=lambda kv: (kv[1], kv[0]))
        report.largest_template = top
        report.largest_share_before = top_size / max(len(lines), 1)
    kept_of: dict[str, set[int]] = {template: set() for template in sizes}
    ranked = sorted(
        (i for i, t in enumerate(templates) if t is not None),
        key=lambda i: _fraction(config.seed, lines[i]),
    )
    for i in ranked:
        bucket = kept_of[templates[i]]  # type: ignore[index]
        if len(bucket) < config.per_template:
            bucket.add(i)
    train: list[str] = []
    heldout: list[str] = []
    for i, (line, template) in enumerate(zip(lines, templates, strict=True)):
        if template is not None and i not in kept_of[template]:
            report.dropped += 1
            continue
        key = template if template is not None else line
        side = heldout if _fraction(config.seed, key) < config.heldout_fraction else train
        side.append(line)
    kept = len(train) + len(heldout)
    if report.largest_template:
        report.largest_share_after = len(kept_of[report.largest_template]) / max(kept, 1)
    report.train_lines, report.heldout_lines = len(train), len(heldout)
    report.heldout_overlap = heldout_overlap(train, heldout)
    return train, heldout, report
