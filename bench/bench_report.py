"""Bench: the full study report (1000 bootstrap rounds, every plot) at 50, 300 and 1000 annotators.

    python bench/bench_report.py [--sizes 50,300,1000] [--full-baseline]
                                 [--max-full-pairs 50000] [--sample-pairs 3000]

Synthetic studies of 78 questions: two careful annotators and one who always clicks left
judge every question; the others each judge 12 random questions with a random button
(issue 8's study was 268 annotators and 3,170 votes). Each size runs in its own process,
single-threaded (``OMP/OPENBLAS/MKL_NUM_THREADS=1``), and measures in that process:

* **after**: ``build_report(rounds=1000)`` plus the plots in both languages, as the job
  does (:func:`sbs.analysis.figures.report_figures_all_languages`); best of 2;
* **before**: the same, with mean pairwise Cohen's kappa computed the way the report did
  before (one pandas selection and one statsmodels ``cohens_kappa`` per annotator pair; the
  implementation is kept below, only here). That loop was the whole difference in time.
  With more pairs than ``--max-full-pairs`` (1000 annotators: 499,500 pairs, about 20
  minutes of loop) and no ``--full-baseline``, the loop runs on ``--sample-pairs`` random
  pairs and its time is scaled to all pairs: such cells are marked ``~``;
* **peak MiB**: the peak of Python-traced allocations (``tracemalloc``, numpy included)
  during one more "after" run; **maxrss MiB**: the process's resident peak after it
  (imports of pandas, matplotlib and Django included);
* **max abs dκ**: the largest difference between the old and the new per-pair kappas.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_average, table  # noqa: E402

QUESTIONS = 78
VOTES_PER_RANDOM = 12
ROUNDS = 1000


def study_frame(annotators: int, seed: int = 0) -> pd.DataFrame:
    """Three consistent annotators on every question, the rest at random on 12 each."""
    from sbs.analysis.stats.frame import vote_frame

    rng = np.random.default_rng(seed)
    prefers_adapted = rng.random(QUESTIONS) < 0.8
    rows: list[dict[str, Any]] = []

    def vote(name: str, q: int, choice: str | None = None, winner: str = "") -> None:
        left = "adapted" if rng.random() < 0.5 else "original"
        rows.append(
            {"question": f"q{q:02d}", "category": f"cat{q % 4}", "annotator": name,
             "model_a": "original", "model_b": "adapted", "left": left,
             "choice": choice or ("left" if winner == left else "right"),
             "seconds": float(rng.integers(3, 90))}
        )  # fmt: skip

    for name in ("careful-1", "careful-2"):
        for q in range(QUESTIONS):
            vote(name, q, winner="adapted" if prefers_adapted[q] else "original")
    for q in range(QUESTIONS):
        vote("lefty", q, choice="left")
    buttons = ["left", "right", "tie", "both_bad"]
    for k in range(annotators - 3):
        for q in rng.choice(QUESTIONS, size=VOTES_PER_RANDOM, replace=False):
            vote(f"random-{k:04d}", int(q), choice=buttons[rng.integers(0, 4)])
    return vote_frame(rows)


# ---------------------------------------------------------------- baseline (the old loop)


def old_pairwise_kappas(
    first: pd.DataFrame, *, min_shared: int = 2, pairs: list[tuple[str, str]] | None = None
) -> np.ndarray:
    """Mean pairwise Cohen's kappa as ``agreement()`` computed it before: a loop over pairs."""
    from sbs.analysis.stats.agreement import cohens_kappa

    wide = first.pivot(index="annotator", columns="item", values="label")
    kappas: list[float] = []
    for x, y in pairs if pairs is not None else itertools.combinations(wide.index, 2):
        both = wide.loc[[x, y]].dropna(axis=1)
        if both.shape[1] >= min_shared:
            k = cohens_kappa(list(both.loc[x]), list(both.loc[y]))
            if k is not None:
                kappas.append(k)
    return np.asarray(kappas, dtype=float)


# ---------------------------------------------------------------- one size, in its own process


def full_report(frame: pd.DataFrame) -> dict[str, Any]:
    from sbs.analysis.figures import report_figures_all_languages
    from sbs.analysis.report import build_report

    report = build_report(frame, original="original", adapted="adapted", rounds=ROUNDS)
    report_figures_all_languages(report)
    return report


def worker(annotators: int, max_full_pairs: int, sample_pairs: int) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sbs.settings")
    import django

    django.setup()
    from sbs.analysis.stats import agreement as agreement_module

    frame = study_frame(annotators)
    first = agreement_module.first_labels(frame)
    full_report(study_frame(20, seed=1))  # warm-up: imports, fonts, caches

    after = []
    for _ in range(2):
        started = time.perf_counter()
        report = full_report(frame)
        after.append(time.perf_counter() - started)
    tracemalloc.start()
    full_report(frame)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    started = time.perf_counter()
    new_kappas = agreement_module.pairwise_cohen_kappas(first)
    new_kappa_s = time.perf_counter() - started
    names = sorted(first["annotator"].unique())
    n_pairs = len(names) * (len(names) - 1) // 2
    out: dict[str, Any] = {
        "annotators": annotators,
        "votes": len(frame),
        "pairs": n_pairs,
        "kappa_pairs": report["agreement"]["cohen_pairs"],
        "after_s": min(after),
        "peak_mib": peak / 2**20,
        "maxrss_mib": maxrss_kib / 1024,
    }
    if n_pairs <= max_full_pairs:
        original = agreement_module.pairwise_cohen_kappas
        agreement_module.pairwise_cohen_kappas = old_pairwise_kappas  # type: ignore[assignment]
        try:
            started = time.perf_counter()
            full_report(frame)
            out["before_s"] = time.perf_counter() - started
        finally:
            agreement_module.pairwise_cohen_kappas = original
        out["before_estimated"] = False
        out["max_dkappa"] = float(np.abs(old_pairwise_kappas(first) - new_kappas).max())
    else:
        rng = np.random.default_rng(0)
        pairs = list(itertools.combinations(names, 2))
        chosen = [pairs[k] for k in rng.choice(len(pairs), size=sample_pairs, replace=False)]
        started = time.perf_counter()
        old_pairwise_kappas(first, pairs=chosen)
        loop_s = (time.perf_counter() - started) * n_pairs / sample_pairs
        out["before_s"] = min(after) - new_kappa_s + loop_s
        out["before_estimated"] = True
        out["max_dkappa"] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,300,1000", help="annotators per study")
    parser.add_argument(
        "--full-baseline",
        action="store_true",
        help="run the old pair loop on every pair (1000 annotators: about 20 minutes)",
    )
    parser.add_argument("--max-full-pairs", type=int, default=50_000)
    parser.add_argument("--sample-pairs", type=int, default=3000)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        full = 10**12 if args.full_baseline else args.max_full_pairs
        print(json.dumps(worker(args.worker, full, args.sample_pairs)))
        return

    rows = []
    for size in (int(s) for s in args.sizes.split(",") if s.strip()):
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            str(size),
            "--max-full-pairs",
            str(args.max_full_pairs),
            "--sample-pairs",
            str(args.sample_pairs),
        ]
        cmd += ["--full-baseline"] if args.full_baseline else []  # fmt: skip
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        mark = "~" if r["before_estimated"] else ""
        rows.append(
            [
                r["annotators"],
                r["votes"],
                r["pairs"],
                f"{mark}{r['before_s']:.1f}",
                f"{r['after_s']:.2f}",
                f"{mark}{r['before_s'] / r['after_s']:.0f}x",
                f"{r['peak_mib']:.0f}",
                f"{r['maxrss_mib']:.0f}",
                "-" if r["max_dkappa"] is None else f"{r['max_dkappa']:.1e}",
            ]
        )
    table(
        f"Full report, {QUESTIONS} questions, {ROUNDS} bootstrap rounds, plots in 2 languages, "
        f"one thread (load average {load_average()})",
        ["annotators", "votes", "annotator pairs", "before s", "after s", "speed-up",
         "after peak MiB", "maxrss MiB", "max abs dκ"],
        rows,
    )  # fmt: skip
    print(
        "\nbefore: the same report with the per-pair Cohen's kappa loop it used until now;"
        "\n~: above --max-full-pairs, the loop timed on --sample-pairs random pairs and scaled"
        " to all pairs (--full-baseline runs it all);"
        "\nafter: best of 2; peak: tracemalloc over one more run; maxrss: the whole process."
    )


if __name__ == "__main__":
    main()
