"""Bench: ensembles of task LoRA adapters on SmolLM2-135M — UDLM vs static vs oracle (tables).

    python bench/bench_ensemble.py [--steps 60] [--quick] [--retrain] [--threads 2]

Four small tasks made by ``adaptation/tasks.py`` (translate a Russian word, add two-digit
numbers, upper-case two English words, the tone of a short Russian review); one LoRA adapter
per task trained with peft on its train split (answer tokens only); then, on the held-out
items of every task, exact match (== greedy decoding) of:

* the base model and each single adapter applied to every task;
* static ensembles (LoRAHub-like): uniform weights, and weights searched on the dev split;
* UDLM, the training-free dynamic gate ``G(h) = softmax(TopK(h · W_G))`` whose rows are the
  normalised mean layer inputs on 8 prompts per task, routed per token or per sequence
  (causal running mean), keeping every adapter or the top one;
* the oracle: each task's own adapter.

A second table gives the weight the gate puts on the right adapter (mean over layers and
scored positions). Adapters are cached under ``var/bench/ensemble/`` and reused while the
settings, the model and the task files are the same (``--retrain`` trains them again).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from _common import load_average, table  # noqa: E402

from adaptation.ensemble import EnsembleConfig, ensemble_folder  # noqa: E402
from adaptation.shipped import smollm2_gguf  # noqa: E402
from adaptation.tasks import AdapterConfig  # noqa: E402

CACHE = ROOT / "var" / "cache"
WORK = ROOT / "var" / "bench" / "ensemble"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="training steps per adapter")
    parser.add_argument("--calibration-items", type=int, default=8)
    parser.add_argument("--search-candidates", type=int, default=24)
    parser.add_argument("--max-test-items", type=int, default=0, help="0: every held-out item")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="30 steps, 16 items per task")
    parser.add_argument("--retrain", action="store_true", help="train the adapters again")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.max_test_items, args.search_candidates = 30, 16, 8
    if args.threads:
        torch.set_num_threads(args.threads)
    work = WORK / f"steps-{args.steps}"
    if args.retrain:
        shutil.rmtree(work / "adapters", ignore_errors=True)
    config = EnsembleConfig(
        adapter=AdapterConfig(steps=args.steps),
        calibration_items=args.calibration_items,
        search_candidates=args.search_candidates,
        max_test_items=args.max_test_items,
    )
    print(
        f"SmolLM2-135M-Instruct, {args.device}, {torch.get_num_threads()} threads, "
        f"load average {load_average()}; adapters r={config.adapter.lora_r} "
        f"alpha={config.adapter.lora_alpha:g} on {','.join(config.adapter.target_modules)}, "
        f"{args.steps} steps x {config.adapter.batch_size}, lr {config.adapter.learning_rate:g}",
        flush=True,
    )
    began = time.perf_counter()
    report = ensemble_folder(
        smollm2_gguf(),
        work,
        config,
        cache_dir=CACHE,
        device=args.device,
        on_progress=lambda message: print(f"  {message}", flush=True),
    )
    tasks = report.tasks
    counts = ", ".join(f"{t} {n}" for t, n in report.test_items.items())
    table(
        f"Exact match (%) on held-out items ({counts})",
        ["method", *tasks, "mean"],
        report.rows(),
    )
    table(
        "UDLM: weight on the right adapter (%), mean over layers and scored positions",
        ["method", *tasks, "mean"],
        [
            [
                method,
                *(f"{100 * per_task[t]:.1f}" for t in tasks),
                f"{100 * sum(per_task.values()) / len(per_task):.1f}",
            ]
            for method, per_task in report.routing.items()
        ],
    )
    table(
        "Adapters and the static search",
        ["task", "train loss first -> last", "searched static weight"],
        [
            [
                t,
                f"{report.train_losses[t][0]:.3f} -> {report.train_losses[t][1]:.3f}",
                f"{report.static_weights[t]:.3f}",
            ]
            for t in tasks
        ],
    )
    print(f"\ntotal {time.perf_counter() - began:.0f} s; report in {work / 'report.json'}")


if __name__ == "__main__":
    main()
