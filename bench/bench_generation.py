"""Bench: SmolLM2-135M-Instruct answer generation on CPU, batched vs one question at a time.

    python bench/bench_generation.py [--quick] [--questions 16] [--max-new-tokens 48]
                                     [--batch-sizes 1,4,8,16] [--threads 1,2] [--repeats 1]

The first N questions of data/demo_questions_ru.jsonl, greedy, the chat template on, through
the same code the worker runs: ``adaptation.modelio.load_model`` (the GGUF is converted once
to a safetensors folder cached under var/cache) and ``adaptation.generate.generate_answers``.
Batch size 1 is one question at a time. A short warm-up generation runs first; with
``--repeats`` > 1 the fastest run per batch size is kept. ``--threads`` runs the whole sweep
once per torch thread count (default: torch's own default, one per core); on a machine whose
cores are busy with other work, more threads than free cores is much slower than one.

Columns: wall seconds for all N answers; answers/s; new tokens/s (new tokens summed over the
answers, each counted up to its own end-of-sequence); speed-up = answers/s over batch 1's at the same thread count;
eos = answers that ended by end-of-sequence (the rest hit the length limit); same text =
answers identical to the first row's (greedy decoding with left padding may differ in the last
float bits, and so in a token now and then).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, load_average, table  # noqa: E402

sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from adaptation.generate import GeneratedAnswer, GenerationSettings, generate_answers  # noqa: E402
from adaptation.modelio import load_model  # noqa: E402
from adaptation.shipped import smollm2_gguf  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 questions, 24 tokens, sizes 1,8")
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-sizes", default="1,4,8,16")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", default="", help="torch thread counts, e.g. 1,2")
    args = parser.parse_args()
    if args.quick:
        args.questions, args.max_new_tokens, args.batch_sizes = 8, 24, "1,8"
    sizes = [int(x) for x in args.batch_sizes.split(",")]
    if 1 not in sizes:
        sizes.insert(0, 1)

    lines = (ROOT / "data" / "demo_questions_ru.jsonl").read_text("utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.strip()][: args.questions]

    print(f"load average at start: {load_average()}; torch threads: {torch.get_num_threads()}")
    began = time.perf_counter()
    loaded = load_model(smollm2_gguf(), cache_dir=ROOT / "var" / "cache", device="cpu")
    print(f"model loaded in {time.perf_counter() - began:.1f} s from {loaded.folder}", flush=True)
    list(
        generate_answers(loaded, questions[:2], GenerationSettings(max_new_tokens=4, batch_size=2))
    )

    threads = [int(x) for x in args.threads.split(",") if x] or [torch.get_num_threads()]
    rows: list[list[object]] = []
    base_texts: dict[int, str] = {}
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        base_rate = 0.0
        for size in sizes:
            settings = GenerationSettings(
                max_new_tokens=args.max_new_tokens, temperature=0.0, batch_size=size
            )
            best: tuple[float, list[GeneratedAnswer]] | None = None
            for _ in range(max(1, args.repeats)):
                t0 = time.perf_counter()
                answers = list(generate_answers(loaded, questions, settings))
                wall = time.perf_counter() - t0
                if best is None or wall < best[0]:
                    best = (wall, answers)
            assert best is not None
            wall, answers = best
            texts = {a.index: a.text for a in answers}
            if not base_texts:
                base_texts = texts
            rate = len(answers) / wall
            base_rate = base_rate or rate
            new_tokens = sum(a.new_tokens for a in answers)
            rows.append(
                [
                    n_threads,
                    size,
                    len(answers),
                    f"{wall:.1f}",
                    f"{rate:.2f}",
                    new_tokens,
                    f"{new_tokens / wall:.1f}",
                    f"{rate / base_rate:.2f}x",
                    sum(a.stop_reason == "eos" for a in answers),
                    sum(texts[i] == base_texts.get(i) for i in texts),
                ]
            )
            print(f"  threads {n_threads}, batch {size}: {wall:.1f} s", flush=True)

    table(
        f"SmolLM2-135M-Instruct on CPU: {len(questions)} questions, max_new_tokens "
        f"{args.max_new_tokens}, greedy (load average at end: {load_average()})",
        [
            "threads",
            "batch",
            "answers",
            "wall s",
            "answers/s",
            "new tokens",
            "new tokens/s",
            "speed-up vs 1",
            "eos",
            "same text",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
