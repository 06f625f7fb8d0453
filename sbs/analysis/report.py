"""The report of a study (two systems, or N) as one JSON-serialisable dict.

:func:`build_report` takes the canonical vote frame (see :mod:`sbs.analysis.stats`) and
the per-model speed rows and computes every section of the registry
(:data:`sbs.analysis.sections.SECTIONS`), in order; the Celery job computes it with
``rounds`` bootstrap rounds. :func:`build_preliminary` computes only the preliminary
sections (the part a request may compute inline); the others are None until the job is
done.

Every number in the returned dicts is finite or None (:func:`~sbs.analysis.stats._plain.plain`
over the whole report), so the JSON export and the database's JSON column never see NaN
or infinity.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sbs.analysis.sections import ALPHA, LEVEL, SCHEMA_VERSION, SECTIONS, ReportInput
from sbs.analysis.stats._plain import plain
from sbs.analysis.stats.frame import first_votes
from sbs.analysis.stats.summary import vote_counts


def _build(
    frame: pd.DataFrame,
    *,
    original: str,
    adapted: str,
    systems: Sequence[str] | None,
    speed: Sequence[Mapping[str, Any]],
    rounds: int,
    seed: int,
    preliminary: bool,
    benchmarks: Sequence[Mapping[str, Any]] = (),
    merge: Mapping[str, Any] | None = None,
    texts: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    firsts = first_votes(frame)
    systems = tuple(systems or (original, adapted))
    inputs = ReportInput(
        frame, firsts, original, adapted, speed, rounds if len(firsts) else 0, seed,
        systems=systems, benchmarks=benchmarks, merge=merge, texts=texts or {},
    )  # fmt: skip
    out: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "preliminary": preliminary,
        "models": {"original": original, "adapted": adapted, "systems": list(systems)},
        "settings": {"rounds": rounds, "seed": seed, "level": LEVEL, "alpha": ALPHA},
        "counts": vote_counts(frame, firsts),
    }
    for s in SECTIONS.values():
        if (preliminary and not s.preliminary) or not s.applies(len(systems)):
            out[s.key] = None  # left to the job, or not a section of this many systems
            continue
        value = s.compute(inputs)
        inputs.done[s.key] = value
        out[s.key] = value.to_dict() if hasattr(value, "to_dict") else value
    if not preliminary:
        out["compute_seconds"] = time.perf_counter() - started
    return plain(out)  # type: ignore[no-any-return]


def build_preliminary(
    frame: pd.DataFrame,
    *,
    original: str,
    adapted: str,
    systems: Sequence[str] | None = None,
    speed: Sequence[Mapping[str, Any]] = (),
    seed: int = 0,
) -> dict[str, Any]:
    """The cheap part of the report: the preliminary sections, without bootstrap.

    Same keys as :func:`build_report`; the sections left to the job are None and
    ``preliminary`` is True.
    """
    return _build(
        frame, original=original, adapted=adapted, systems=systems, speed=speed, rounds=0,
        seed=seed, preliminary=True,
    )  # fmt: skip


def build_report(
    frame: pd.DataFrame,
    *,
    original: str,
    adapted: str,
    systems: Sequence[str] | None = None,
    speed: Sequence[Mapping[str, Any]] = (),
    rounds: int = 1000,
    seed: int = 0,
    benchmarks: Sequence[Mapping[str, Any]] = (),
    merge: Mapping[str, Any] | None = None,
    texts: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every section of the report (see :mod:`sbs.analysis.sections` for orientation and
    policies); ``systems``: every system of the study in its order, ``original`` and
    ``adapted`` first (None: those two alone; with three or more, the sections of two
    systems are None and the pairwise section is computed);
    ``benchmarks``: both models' benchmark results, for the forgetting section;
    ``merge``: the adapted model's merging-factor sweep (its recipe), for the φ curve;
    ``texts``: both models' bits on the held-out texts by category."""
    return _build(
        frame, original=original, adapted=adapted, systems=systems, speed=speed,
        rounds=rounds, seed=seed, preliminary=False, benchmarks=benchmarks, merge=merge,
        texts=texts,
    )  # fmt: skip
