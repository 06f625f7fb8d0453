"""Bench: UDLM on SmolLM2-135M — real Russian task adapters mixed by a training-free gate.

    python bench/bench_ensemble.py [--steps 40] [--batch-size 8] [--quick] [--retrain]
                                   [--tasks wsd,medical,definition] [--threads 2]

Three Russian tasks made by ``adaptation/tasks.py`` (which sense a word has in a context,
``rl-wsd-labeled``; medical exam questions, ``mednsktest``; the word for a Wiktionary
definition, ``wiki-ru-wordnet``; the first two as lettered options answered by the letter).
One peft LoRA adapter per task is trained on its train split, the gate is calibrated on a few
train prompts per task and the whole is saved as an ensemble folder
(``python -m adaptation ensemble calibrate``); then ``ensemble evaluate`` scores, on each
task's held-out items, exact match (== greedy decoding) with a 95% Wilson interval of: the
base model; the task's own adapter; static ensembles (uniform; LoRAHub-style weights
searched on the dev split); UDLM with the top 1 and top 2 adapters
(``G(h) = softmax(TopK(h · W_G) / T)``, sequence granularity, causal running mean, T = 1);
and the oracle (an item counts when any single adapter answers it right).

A second table: tokens per second of greedy generation (``adaptation.generate``, the workers'
code path) with dynamic routing (the saved ensemble through ``loading.load_any``) vs the
first task's adapter merged into the weights (peft ``merge_and_unload``) vs the base, in
this process, on the same prompts, each with the same number of new tokens.

The ensemble folder is kept under ``var/bench/ensemble/`` and its adapters are reused while
the base, the tasks' items and the adapter settings stay the same (``--retrain``: train
them again).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from _common import load_average, table  # noqa: E402

from adaptation.ensemble import (  # noqa: E402
    EnsembleConfig,
    EnsembleReport,
    EvaluationConfig,
    GateConfig,
    calibrate_folder,
    evaluate_folder,
    read_manifest,
)
from adaptation.generate import GenerationSettings, generate_answers  # noqa: E402
from adaptation.loading import load_any  # noqa: E402
from adaptation.modelio import LoadedModel, load_model, pick_device  # noqa: E402
from adaptation.shipped import smollm2_gguf  # noqa: E402
from adaptation.tasks import RU_TASKS, AdapterConfig, load_tasks  # noqa: E402

CACHE = ROOT / "var" / "cache"
WORK = ROOT / "var" / "bench" / "ensemble"


def merged_model(folder: Path, task: str, base: Path, device: str) -> LoadedModel:
    """The base with one task's adapter merged into its weights (a plain transformers model)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    plain = load_model(base, cache_dir=CACHE, device=device)
    fresh = AutoModelForCausalLM.from_pretrained(plain.folder, dtype=plain.model.dtype)
    merged = PeftModel.from_pretrained(fresh, folder / "adapters" / task).merge_and_unload()
    merged.to(plain.device).eval()
    return LoadedModel(model=merged, tokenizer=plain.tokenizer, device=plain.device, folder=folder)


def speed_rows(
    models: dict[str, LoadedModel],
    prompts: list[str],
    new_tokens: int,
    batch_sizes: list[int],
    rounds: int,
) -> list[list[str]]:
    """Per batch size, ``rounds`` rounds that run each model in turn (so a burst of load on a
    shared machine hits them alike); the best and the median rate of each model."""
    rows = []
    for batch_size in batch_sizes:
        settings = GenerationSettings(max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                      use_chat_template=False, batch_size=batch_size)  # fmt: skip
        rates: dict[str, list[float]] = {name: [] for name in models}
        tokens = 0
        for loaded in models.values():
            list(generate_answers(loaded, prompts[:1], settings))  # warm-up
        for _ in range(rounds):
            for name, loaded in models.items():
                began = time.perf_counter()
                answers = list(generate_answers(loaded, prompts, settings))
                tokens = sum(a.new_tokens for a in answers)
                rates[name].append(tokens / (time.perf_counter() - began))
        base = max(rates["base"])
        for name, got in rates.items():
            rows.append([name, str(batch_size), str(tokens), f"{max(got):.1f}",
                         f"{statistics.median(got):.1f}", f"{max(got) / base:.2f}"])  # fmt: skip
    return rows


def print_report(report: EnsembleReport, folder: Path) -> None:
    table(
        "Exact match % [95% Wilson interval] on the held-out items, per task",
        report.header(),
        report.rows(),
    )
    tasks = report.tasks
    table(
        "UDLM: mean weight on the task's own adapter (%), over layers and scored positions",
        ["method", *tasks],
        [[m, *(f"{100 * w[t]:.1f}" for t in tasks)] for m, w in report.routing.items()],
    )
    losses = (read_manifest(folder).get("training") or {}).get("losses", {})
    table(
        "Adapters, the static search, and each adapter on every task (exact match %)",
        ["task", "train loss first -> last", "searched weight", *(f"on {t}" for t in tasks)],
        [
            [
                t,
                " -> ".join(f"{v:.3f}" for v in losses.get(t, [])),
                f"{report.static_weights[t]:.3f}",
                *(f"{100 * report.scores[f'adapter {t}'][u]:.1f}" for u in tasks),
            ]
            for t in tasks
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(RU_TASKS))
    parser.add_argument("--steps", type=int, default=40, help="training steps per adapter")
    parser.add_argument("--batch-size", type=int, default=8, help="training batch")
    parser.add_argument("--calibration-items", type=int, default=8)
    parser.add_argument("--search-candidates", type=int, default=8)
    parser.add_argument("--max-test-items", type=int, default=0, help="0: every held-out item")
    parser.add_argument("--speed-prompts", type=int, default=8)
    parser.add_argument("--speed-tokens", type=int, default=16)
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--speed-only", action="store_true",
                        help="skip calibrate and evaluate: the saved folder and its evaluation")  # fmt: skip
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true",
                        help="6 steps x 4, 12 test items per task, 2 search draws, 4 prompts x "
                        "16 tokens for the speed")  # fmt: skip
    parser.add_argument("--retrain", action="store_true", help="train the adapters again")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch_size, args.max_test_items = 6, 4, 12
        args.search_candidates, args.calibration_items = 2, 4
        args.speed_prompts, args.speed_tokens = 4, 16
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    config = EnsembleConfig(
        tasks=tasks,
        adapter=AdapterConfig(steps=args.steps, batch_size=args.batch_size),
        gate=GateConfig(top_k=1),
        calibration_items=args.calibration_items,
    )
    folder = WORK / f"{'-'.join(tasks)}-steps{args.steps}x{args.batch_size}"
    if args.retrain:
        shutil.rmtree(folder, ignore_errors=True)
    a = config.adapter
    print(
        f"SmolLM2-135M-Instruct, {device}, {torch.get_num_threads()} threads, load average "
        f"{load_average()}; adapters r={a.lora_r} alpha={a.lora_alpha:g} on "
        f"{','.join(a.target_modules)}, {a.steps} steps x {a.batch_size}, lr "
        f"{a.learning_rate:g}; gate on {config.calibration_items} prompts per task",
        flush=True,
    )
    began = time.perf_counter()
    log = lambda message: print(f"  {message}", flush=True)  # noqa: E731
    if not args.speed_only:
        calibrate_folder(smollm2_gguf(), folder, config, cache_dir=CACHE, device=device,
                         on_progress=log)  # fmt: skip
    trained = time.perf_counter()
    evaluation = EvaluationConfig(search_candidates=args.search_candidates,
                                  max_test_items=args.max_test_items, top_ks=(1, 2))  # fmt: skip
    if args.speed_only:
        report = EnsembleReport(**read_manifest(folder)["evaluation"])
    else:
        report = evaluate_folder(folder, evaluation, cache_dir=CACHE, device=device,
                                 on_progress=log)  # fmt: skip
    scored = time.perf_counter()
    print_report(report, folder)

    splits = load_tasks(tasks)
    tests = [list(splits[t].test) for t in tasks]
    prompts = [item.prompt for row in zip(*tests, strict=False) for item in row]
    prompts = prompts[: args.speed_prompts]
    models = {
        "base": load_model(smollm2_gguf(), cache_dir=CACHE, device=device),
        f"adapter {tasks[0]} merged": merged_model(folder, tasks[0], smollm2_gguf(), device),
        "UDLM routed (top-1, sequence)": load_any(folder, cache_dir=CACHE, device=device),
    }
    batch_sizes = sorted({1, len(prompts)})
    rows = speed_rows(models, prompts, args.speed_tokens, batch_sizes, args.speed_rounds)
    table(
        f"Greedy generation speed: {len(prompts)} prompts of the test splits x "
        f"{args.speed_tokens} new tokens, same process, {args.speed_rounds} interleaved rounds",
        ["model", "batch", "new tokens", "tokens/s best", "tokens/s median", "best vs base"],
        rows,
    )
    per_method = ", ".join(f"{m} {s:.0f} s" for m, s in report.seconds.items())
    print(
        f"\ncalibrate {trained - began:.0f} s, evaluate {scored - trained:.0f} s ({per_method}), "
        f"speed {time.perf_counter() - scored:.0f} s; load average {load_average()}; "
        f"ensemble folder {folder}"
    )


if __name__ == "__main__":
    main()
