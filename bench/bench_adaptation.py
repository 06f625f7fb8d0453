"""Bench: original SmolLM2-135M vs its Russian-adapted vocabulary (prints tables; not a test).

    python bench/bench_adaptation.py [--vocab-size 32000] [--train-steps 5] [--lora-steps 10]

1. fertility on data/ru_heldout_prose.txt: original tokenizer vs a 32k unigram trained on the
   wiki-ru-wordnet text (train split);
2. speed on data/ru_reference_1000.txt, same process: (a) forced token-by-token decoding with
   a KV cache and (b) one forward pass, seconds per 1000 characters, with ratios;
3. embeddings-only training throughput (characters of text per second), original vs adapted;
4. a merging-factor sweep: a short LoRA (alpha 512) on the adapted model, each φ scored by
   bits per character on the held-out prose (the gain) and on the shipped held-out texts by
   category, English included (the forgetting); φ chosen by the trade-off rule.

The tokenizer is cached under var/bench/; everything else is recomputed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


from adaptation.corpus import CorpusConfig, is_heldout, read_text_file, wordnet_lines  # noqa: E402
from adaptation.fertility import fertility  # noqa: E402
from adaptation.merging import MergeConfig, sweep_merge_factor  # noqa: E402
from adaptation.modelio import load_model  # noqa: E402
from adaptation.scoring import ScoringConfig  # noqa: E402
from adaptation.shipped import smollm2_gguf as smollm2  # noqa: E402
from adaptation.speed import SpeedConfig, measure_speed  # noqa: E402
from adaptation.tokenizer import TokenizerConfig, train_tokenizer  # noqa: E402
from adaptation.training import TrainConfig, train  # noqa: E402
from adaptation.vocab import SwapConfig, swap_vocabulary  # noqa: E402

CACHE = ROOT / "var" / "cache"
BENCH = ROOT / "var" / "bench"


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n### {title}\n")
    for n, row in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=32000)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--lora-steps", type=int, default=10)
    args = parser.parse_args()
    corpus = CorpusConfig()
    began = time.perf_counter()
    train_lines = [
        line
        for line in wordnet_lines(corpus)
        if not is_heldout(line, corpus.heldout_fraction, corpus.seed)
    ]
    print(
        f"wiki-ru-wordnet train split: {len(train_lines)} lines, "
        f"{sum(map(len, train_lines)) / 1e6:.1f} M characters "
        f"({time.perf_counter() - began:.0f} s)"
    )

    original = load_model(smollm2(), cache_dir=CACHE, device="cpu")
    tok_dir = BENCH / f"unigram-{args.vocab_size}"
    if not (tok_dir / "tokenizer.json").exists():
        began = time.perf_counter()
        train_tokenizer(
            train_lines,
            tok_dir,
            TokenizerConfig(vocab_size=args.vocab_size),
            original=original.tokenizer,
        )
        print(f"trained the {args.vocab_size} unigram in {time.perf_counter() - began:.0f} s")
    from transformers import AutoTokenizer

    new_tok = AutoTokenizer.from_pretrained(tok_dir)
    old_tok = original.tokenizer

    prose = [p for p in read_text_file(ROOT / "data" / "ru_heldout_prose.txt")]
    reference = (ROOT / "data" / "ru_reference_1000.txt").read_text(encoding="utf-8").strip()
    fo, fn = fertility(old_tok, prose), fertility(new_tok, prose)
    table(
        "Fertility on data/ru_heldout_prose.txt",
        ["tokenizer", "vocab", "tokens", "tokens/word", "chars/token", "'интеллект'"],
        [
            [
                "SmolLM2 original",
                len(old_tok),
                fo.tokens,
                f"{fo.tokens_per_word:.2f}",
                f"{fo.chars_per_token:.2f}",
                fo.probes["интеллект"],
            ],
            [
                f"unigram {args.vocab_size}",
                len(new_tok),
                fn.tokens,
                f"{fn.tokens_per_word:.2f}",
                f"{fn.chars_per_token:.2f}",
                fn.probes["интеллект"],
            ],
        ],
    )

    adapted_model = load_model(smollm2(), cache_dir=CACHE, device="cpu").model
    report = swap_vocabulary(adapted_model, old_tok, new_tok, SwapConfig(init="mean"))
    adapted_model.eval()
    print(
        f"\nswap: {report.new_vocab} tokens, {report.mean_pieces:.2f} old pieces per new token, "
        f"{report.special_mapped} specials, {report.byte_mapped} bytes, "
        f"{report.unspelled} unspelled"
    )

    cfg = SpeedConfig(repeats=3, warmup=1)
    so = measure_speed(original.model, old_tok, reference, cfg)
    sn = measure_speed(adapted_model, new_tok, reference, cfg)
    table(
        f"Speed on data/ru_reference_1000.txt ({len(reference)} chars), CPU, median of 3",
        ["model", "tokens", "(a) forced decoding s/1000 chars", "(b) one pass s/1000 chars"],
        [
            [
                "original",
                so.tokens,
                f"{so.forced_s_per_1000_chars:.3f}",
                f"{so.single_pass_s_per_1000_chars:.4f}",
            ],
            [
                "adapted (mean init, untrained)",
                sn.tokens,
                f"{sn.forced_s_per_1000_chars:.3f}",
                f"{sn.single_pass_s_per_1000_chars:.4f}",
            ],
            [
                "speed-up (original / adapted)",
                f"{so.tokens / sn.tokens:.2f}x fewer",
                f"{so.forced_seconds / sn.forced_seconds:.2f}x",
                f"{so.single_pass_seconds / sn.single_pass_seconds:.2f}x",
            ],
        ],
    )

    sample = train_lines[:4000]
    tcfg = TrainConfig(
        mode="embeddings", steps=args.train_steps, batch_size=4, seq_len=256, learning_rate=1e-3
    )
    base_copy = load_model(smollm2(), cache_dir=CACHE, device="cpu").model
    _, ro = train(base_copy, old_tok, sample, tcfg)
    del base_copy
    adapted_model, rn = train(adapted_model, new_tok, sample, tcfg)
    table(
        f"Embeddings-only training throughput ({args.train_steps} steps x 4 x 256 tokens, CPU)",
        ["model", "tokens/s", "chars/s", "final loss"],
        [
            [
                "original",
                f"{ro.tokens_per_second:.0f}",
                f"{ro.chars_per_second:.0f}",
                f"{ro.losses[-1]:.3f}",
            ],
            [
                "adapted",
                f"{rn.tokens_per_second:.0f}",
                f"{rn.chars_per_second:.0f}",
                f"{rn.losses[-1]:.3f}",
            ],
            [
                "ratio (adapted / original)",
                f"{rn.tokens_per_second / ro.tokens_per_second:.2f}x",
                f"{rn.chars_per_second / ro.chars_per_second:.2f}x",
                "",
            ],
        ],
    )

    lcfg = TrainConfig(
        mode="lora",
        steps=args.lora_steps,
        batch_size=4,
        seq_len=256,
        learning_rate=2e-5,
        lora_r=8,
        lora_alpha=512,
    )
    peft_model, rl = train(adapted_model, new_tok, train_lines[4000:8000], lcfg)
    sweep = sweep_merge_factor(
        peft_model, new_tok, prose, MergeConfig(scoring=ScoringConfig(max_length=512))
    )
    categories = sorted({c for s in sweep.scores for c in s.forgetting_by_category})
    table(
        f"Merging factor sweep: LoRA r=8 alpha=512, {args.lora_steps} steps on the adapted model; "
        f"bits per character on the held-out prose (gain = bpc(0) - bpc(phi)) and forgetting "
        f"per held-out text category (relative bpc rise against phi = 0); rule "
        f"{sweep.select_by!r}, tolerance {sweep.tolerance:.0%}",
        ["phi", "bpc", "gain", *categories, "within", "chosen"],
        [
            [f"{s.phi:.3f}", f"{s.bpc:.4f}", f"{s.gain:+.4f}",
             *(f"{s.forgetting_by_category.get(c, float('nan')):+.2%}" for c in categories),
             "yes" if s.within_tolerance else "no", "*" if s.phi == sweep.best_phi else ""]
            for s in sweep.scores
        ],
    )  # fmt: skip
    print(
        f"\nLoRA throughput: {rl.tokens_per_second:.0f} tokens/s, "
        f"{rl.chars_per_second:.0f} chars/s; losses {[round(x, 3) for x in rl.losses]}"
    )


if __name__ == "__main__":
    main()
