"""Multiple-choice scoring with the prompt shared by the choices, against the plain path, on
the demo's SmolLM2-135M-Instruct: items per second and the largest log-likelihood difference.

    python bench/bench_choice_scoring.py [--per-set 20] [--formats cloze,lettered]
                                         [--batch-size 16] [--threads 2] [--quick]

One process, one model (``adaptation.modelio.load_model`` on the shipped GGUF, converted once
to a safetensors folder under var/cache), CPU, ``--threads`` torch threads. A fixed sample of
``--per-set`` items of each shipped set (``general-ru``, ``rl-wsd-labeled``, ``mednsktest``;
``adaptation.benchmarks.sample_items`` spread over the set's categories) is scored by
``adaptation.scoring.score_choices`` three ways:

* one at a time: the plain path (each choice's whole sequence through the model), batch 1;
* batched: the plain path, ``--batch-size`` sequences a pass;
* shared, batched: each item's prompt once, its key/value cache shared by its choices;
  ``--batch-size`` prompts a pass, then ``--batch-size`` choices a pass against the cache.

Columns: items/s (after one warm-up item), the speed-up over one at a time, the largest
|Δ log-likelihood| (nats) of any choice against one at a time, and the share of items whose
acc / acc_norm prediction differs from it. In the lettered format every continuation is a
single letter, read at the prompt's last position on either path, so sharing changes nothing.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, load_average, table  # noqa: E402

sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from adaptation.benchmarks import SHIPPED_SETS, MCItem, sample_items  # noqa: E402
from adaptation.modelio import LoadedModel, load_model  # noqa: E402
from adaptation.scoring import ChoiceConfig, ItemScore, score_choices  # noqa: E402
from adaptation.shipped import smollm2_gguf  # noqa: E402

SETS = ("general-ru", "rl-wsd-labeled", "mednsktest")


def sample(key: str, n: int) -> list[MCItem]:
    """``n`` items of a set, spread evenly over its categories (a stable hash order)."""
    items = SHIPPED_SETS[key].load()
    categories = len({i.category for i in items})
    return sample_items(items, math.ceil(n / categories))[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-set", type=int, default=20)
    parser.add_argument("--formats", default="cloze,lettered")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="--per-set 4 --formats cloze")
    args = parser.parse_args()
    if args.quick:
        args.per_set, args.formats = 4, "cloze"
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    print(f"load average {load_average()}; torch threads {torch.get_num_threads()}")

    started = time.perf_counter()
    loaded = load_model(smollm2_gguf(), cache_dir=ROOT / "var" / "cache", device="cpu")
    print(f"SmolLM2-135M-Instruct loaded in {time.perf_counter() - started:.1f} s (cpu)")
    sets = {key: sample(key, args.per_set) for key in SETS}

    for fmt in args.formats.split(","):  # a table per format, printed as soon as it is done
        rows: list[list[object]] = []
        totals: dict[str, float] = {}
        for key, items in sets.items():
            rows += compare(loaded, key, fmt, items, args.batch_size, totals)
        n = sum(len(items) for items in sets.values())
        base = totals["one at a time"]
        for name, seconds in totals.items():
            rows.append(
                ["all", fmt, name, n, f"{n / seconds:.2f}", f"{base / seconds:.2f}x", "", ""]
            )
        table(
            f"Multiple-choice scoring ({fmt}), SmolLM2-135M-Instruct, cpu, {args.threads} "
            f"threads: items/s (batched = {args.batch_size} sequences a pass); Δ against one "
            "at a time",
            ["set", "format", "path", "items", "items/s", "speed-up", "max |Δ ll| (nats)",
             "predictions changed"],
            rows,
        )  # fmt: skip
    print(f"\nload average {load_average()}")


PATHS = {
    "one at a time": (1, False),
    "batched": (None, False),
    "shared, batched": (None, True),
}


def compare(
    loaded: LoadedModel,
    key: str,
    fmt: str,
    items: list[MCItem],
    batch_size: int,
    totals: dict[str, float],
) -> list[list[object]]:
    rows: list[list[object]] = []
    reference: list[ItemScore] = []
    first = 0.0  # seconds one at a time
    for name, (batch, share) in PATHS.items():
        config = ChoiceConfig(
            prompt_format=fmt,  # type: ignore[arg-type]
            batch_size=batch or batch_size,
            share_prompt=share,
        )
        score_choices(loaded.model, loaded.tokenizer, items[:1], config)  # warm-up
        began = time.perf_counter()
        scores = score_choices(loaded.model, loaded.tokenizer, items, config)
        seconds = time.perf_counter() - began
        totals[name] = totals.get(name, 0.0) + seconds
        if not reference:
            reference, first = scores, seconds
            delta, changed = "—", "—"
        else:
            delta = f"{max_delta(scores, reference):.1e}"
            moved = sum(
                (a.predicted, a.predicted_norm) != (b.predicted, b.predicted_norm)
                for a, b in zip(scores, reference, strict=True)
            )
            changed = f"{moved}/{len(items)}"
        rows.append([
            key, fmt, name, len(items), f"{len(items) / seconds:.2f}",
            f"{first / seconds:.2f}x", delta, changed,
        ])  # fmt: skip
    return rows


def max_delta(scores: list[ItemScore], reference: list[ItemScore]) -> float:
    return max(
        abs(a - b)
        for s, r in zip(scores, reference, strict=True)
        for a, b in zip(s.logprobs, r.logprobs, strict=True)
    )


if __name__ == "__main__":
    main()
