"""Benchmark scores of the demo's SmolLM2-135M-Instruct beside chance and trivial baselines,
and the scorer's throughput batched against one item at a time.

    python bench/bench_forgetting.py [--per-category 10] [--speed-items 8] [--quick]

The same code the worker runs: ``adaptation.modelio.load_model`` (the GGUF is converted once
to a safetensors folder cached under var/cache) and ``adaptation.scoring.score_choices``.
Sets: ``general-ru`` (40 items written for the project, all of them), ``rl-wsd-labeled`` and
``mednsktest`` (a fixed sample of ``--per-category`` items per category:
``adaptation.benchmarks.sample_items``), each in the cloze and the lettered format. On a
laptop CPU the 135M model scores roughly 100-200 prompt tokens a second per core: a word-sense
item in the lettered format lists up to 14 long definitions (up to ~2,400 tokens), so the
default sample is small; pass ``--per-category 200`` on a GPU. Then bits
per character on the held-out texts by category, and items per second with batches of 16
against batches of 1 (``--speed-items`` items of each set, cloze and lettered).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, load_average, table  # noqa: E402

sys.path.insert(0, str(ROOT))
os.environ.setdefault("TORCH_NUM_THREADS", "2")

import torch  # noqa: E402

from adaptation.benchmarks import (  # noqa: E402
    SHIPPED_SETS,
    MCItem,
    baselines,
    heldout_texts,
    sample_items,
)
from adaptation.modelio import LoadedModel, load_model  # noqa: E402
from adaptation.scoring import (  # noqa: E402
    ChoiceConfig,
    ScoringConfig,
    bpc_by_category,
    choice_metrics,
    score_choices,
)
from adaptation.shipped import smollm2_gguf  # noqa: E402


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-category", type=int, default=10)
    parser.add_argument("--speed-items", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="--per-category 4 --speed-items 4")
    parser.add_argument("--speed-only", action="store_true", help="only the throughput table")
    args = parser.parse_args()
    if args.quick:
        args.per_category, args.speed_items = 4, 4
    torch.set_num_threads(int(os.environ["TORCH_NUM_THREADS"]))
    print(f"load average {load_average()}; torch threads {torch.get_num_threads()}")

    started = time.perf_counter()
    loaded = load_model(smollm2_gguf(), cache_dir=ROOT / "var" / "cache", device="cpu")
    print(f"SmolLM2-135M-Instruct loaded in {time.perf_counter() - started:.1f} s (cpu)")

    sets = {}
    for key in ("general-ru", "rl-wsd-labeled", "mednsktest"):
        items = SHIPPED_SETS[key].load()
        sets[key] = items if key == "general-ru" else sample_items(items, args.per_category)

    if not args.speed_only:
        scores_tables(loaded, sets)
    speed_table(loaded, sets, args.speed_items)
    print(f"\nload average {load_average()}")


def scores_tables(loaded: LoadedModel, sets: dict[str, list[MCItem]]) -> None:
    rows, category_rows = [], []
    for key, items in sets.items():
        base = baselines(items)
        for fmt in ("cloze", "lettered"):
            began = time.perf_counter()
            scores = score_choices(
                loaded.model, loaded.tokenizer, items, ChoiceConfig(prompt_format=fmt)
            )
            seconds = time.perf_counter() - began
            m = choice_metrics([i.category for i in items], scores)
            rows.append([
                key, fmt, m.n, pct(m.acc), pct(m.acc_norm), pct(base["chance"]),
                pct(base["first"]), pct(base["longest"]), pct(base["majority"]),
                f"{m.n / seconds:.1f}",
            ])  # fmt: skip
            for category, c in m.categories.items():
                cat_base = baselines([i for i in items if i.category == category])
                category_rows.append([
                    key, fmt, category, c["n"], pct(c["acc"]), pct(c["acc_norm"]),
                    pct(cat_base["chance"]), pct(cat_base["longest"]),
                ])  # fmt: skip
    table(
        "SmolLM2-135M-Instruct on the shipped sets, accuracy in % (baselines read no question; "
        "most frequent = the set's most frequent gold position, an oracle)",
        ["set", "format", "items", "acc", "acc_norm", "chance", "first", "longest",
         "most frequent", "items/s"],
        rows,
    )  # fmt: skip
    table(
        "By category",
        ["set", "format", "category", "items", "acc", "acc_norm", "chance", "longest"],
        category_rows,
    )

    texts = heldout_texts()
    bpc = bpc_by_category(loaded.model, loaded.tokenizer, texts, ScoringConfig(max_length=512))
    table(
        "Bits per character on the held-out texts by category",
        ["category", "characters", "tokens", "bpc"],
        [[c, r.chars, r.tokens, f"{r.bpc:.4f}"] for c, r in bpc.items()],
    )


def speed_table(loaded: LoadedModel, sets: dict[str, list[MCItem]], n: int) -> None:
    speed_rows = []
    for key, items in sets.items():
        part = items[:n]
        for fmt in ("cloze", "lettered"):
            timings = {}
            for batch in (1, 16):
                config = ChoiceConfig(prompt_format=fmt, batch_size=batch)
                score_choices(loaded.model, loaded.tokenizer, part[:2], config)  # warm-up
                began = time.perf_counter()
                score_choices(loaded.model, loaded.tokenizer, part, config)
                timings[batch] = time.perf_counter() - began
            choices = sum(len(i.choices) for i in part)
            speed_rows.append([
                key, fmt, len(part), choices, f"{len(part) / timings[1]:.2f}",
                f"{len(part) / timings[16]:.2f}", f"{timings[1] / timings[16]:.2f}x",
            ])  # fmt: skip
    table(
        "Scoring throughput, items/s (one item at a time = batch 1; batched = 16 sequences a pass)",
        ["set", "format", "items", "choices", "one at a time", "batched", "speed-up"],
        speed_rows,
    )


if __name__ == "__main__":
    main()
