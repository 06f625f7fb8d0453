"""The whole adaptation recipe as one resumable pipeline over a work folder.

Steps (the research's two-stage recipe, section 2-3 of the seed):
  1. corpus     Russian text (wiki-ru-wordnet + the user's files), deterministic held-out split
  2. tokenizer  a new sentencepiece tokenizer (unigram by default) keeping the special tokens
  3. swap       new embeddings + LM head, initialised by mean/weighted mean/random/projection
  4. train      embeddings + LM head only (body frozen), optionally then LoRA
  5. merge      with LoRA: sweep the merging factor phi on the held-out split, keep the best
Each step writes its output folder and a ``done`` marker; a rerun (a redelivered job) skips
finished steps and resumes training from its checkpoint.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from adaptation.corpus import CorpusConfig, read_text_file, split_lines, wordnet_lines
from adaptation.merging import MergeConfig, merge_sweep_folder
from adaptation.tokenizer import TokenizerConfig, train_tokenizer
from adaptation.training import TrainConfig, train_folder
from adaptation.vocab import InitMethod, SwapConfig, swap_vocab_folder

Step = Literal["corpus", "tokenizer", "swap", "train", "lora", "merge", "done"]
OnProgress = Callable[[str, float, str], None]  # (step, fraction of that step, message)


@dataclass(frozen=True)
class PipelineConfig:
    vocab_size: int = 32000
    tokenizer_type: Literal["unigram", "bpe"] = "unigram"
    init: InitMethod = "mean"
    train_steps: int = 40
    batch_size: int = 4
    seq_len: int = 128
    learning_rate: float = 2e-3
    lora_steps: int = 0  # 0: embeddings only
    lora_r: int = 8
    lora_alpha: float = 512.0
    merge_grid: tuple[float, ...] = (0.0, 1 / 3, 1 / 2, 2 / 3, 1.0)
    max_corpus_lines: int | None = None  # None: every wordnet line
    heldout_lines: int = 200  # held-out lines used for the phi sweep
    use_wordnet: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.train_steps < 0 or self.lora_steps < 0:
            raise ValueError("steps must be >= 0")
        if self.vocab_size < 300:
            raise ValueError("vocab_size must be at least 300")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        if "merge_grid" in values:
            values["merge_grid"] = tuple(float(x) for x in values["merge_grid"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["merge_grid"] = list(self.merge_grid)
        return out


@dataclass
class PipelineResult:
    model_dir: Path
    steps: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"model_dir": str(self.model_dir), "steps": self.steps}


def _done(folder: Path) -> bool:
    return (folder / ".done").exists()


def _mark(folder: Path, info: dict[str, Any]) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".done").write_text(json.dumps(info, ensure_ascii=False, indent=2, default=str))
    return info


def _info(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / ".done").read_text()))


def run_pipeline(
    model_path: Path,
    work_dir: Path,
    config: PipelineConfig,
    *,
    cache_dir: Path,
    extra_texts: Sequence[Path] = (),
    device: str = "cpu",
    on_progress: OnProgress | None = None,
) -> PipelineResult:
    """Adapt ``model_path`` (HF folder or GGUF); the final model folder is returned."""
    from transformers import AutoTokenizer

    from adaptation.modelio import resolve_folder

    def report(step: str, fraction: float, message: str = "") -> None:
        if on_progress is not None:
            on_progress(step, fraction, message)

    work_dir.mkdir(parents=True, exist_ok=True)
    result = PipelineResult(model_dir=work_dir)

    # 1. corpus
    corpus = work_dir / "corpus"
    if not _done(corpus):
        report("corpus", 0.0, "reading Russian text")
        lines: list[str] = []
        if config.use_wordnet:
            lines.extend(wordnet_lines(CorpusConfig(max_lines=config.max_corpus_lines)))
        for path in extra_texts:
            lines.extend(read_text_file(Path(path)))
        if not lines:
            raise ValueError("no training text: enable wiki-ru-wordnet or give text files")
        train, heldout = split_lines(lines, 0.02, config.seed)
        corpus.mkdir(parents=True, exist_ok=True)
        (corpus / "train.txt").write_text("\n".join(train) + "\n")
        (corpus / "heldout.txt").write_text("\n".join(heldout) + "\n")
        _mark(corpus, {"train_lines": len(train), "heldout_lines": len(heldout),
                       "train_chars": sum(map(len, train))})  # fmt: skip
    result.steps["corpus"] = _info(corpus)
    train_lines = (corpus / "train.txt").read_text().splitlines()
    heldout_lines = (corpus / "heldout.txt").read_text().splitlines()[: config.heldout_lines]
    report("corpus", 1.0, f"{len(train_lines)} lines")

    # 2. tokenizer
    tokenizer_dir = work_dir / "tokenizer"
    if not _done(tokenizer_dir):
        report("tokenizer", 0.0, f"training a {config.tokenizer_type} tokenizer")
        shutil.rmtree(tokenizer_dir, ignore_errors=True)
        original = AutoTokenizer.from_pretrained(resolve_folder(Path(model_path), cache_dir))
        train_tokenizer(
            corpus / "train.txt",
            tokenizer_dir,
            TokenizerConfig(vocab_size=config.vocab_size, model_type=config.tokenizer_type, seed=config.seed),
            original=original,
        )  # fmt: skip
        _mark(tokenizer_dir, {"vocab_size": config.vocab_size, "type": config.tokenizer_type})
    result.steps["tokenizer"] = _info(tokenizer_dir)
    report("tokenizer", 1.0)

    # 3. vocabulary swap
    swapped = work_dir / "swapped"
    if not _done(swapped):
        report("swap", 0.0, f"{config.init} initialisation of the new embeddings")
        shutil.rmtree(swapped, ignore_errors=True)
        swap_report = swap_vocab_folder(
            Path(model_path), tokenizer_dir, swapped, SwapConfig(init=config.init, seed=config.seed),
            cache_dir=cache_dir,
        )  # fmt: skip
        _mark(swapped, _plain(swap_report))
    result.steps["swap"] = _info(swapped)
    current = swapped
    report("swap", 1.0)

    # 4. embeddings-only training (resumable)
    if config.train_steps:
        trained = work_dir / "trained"
        if not _done(trained):
            cfg = TrainConfig(mode="embeddings", steps=config.train_steps, batch_size=config.batch_size,
                              seq_len=config.seq_len, learning_rate=config.learning_rate,
                              checkpoint_every=max(1, config.train_steps // 4), seed=config.seed)  # fmt: skip
            outcome = train_folder(
                swapped, train_lines, trained, cfg, cache_dir=cache_dir, device=device,
                resume=(trained / "checkpoint").exists(),
                on_step=lambda step, total, loss: report("train", step / total, f"loss {loss:.3f}"),
            )  # fmt: skip
            _mark(trained, outcome.to_dict())
        result.steps["train"] = _info(trained)
        current = trained / "model"

    # 5. LoRA and the merging factor
    if config.lora_steps:
        lora = work_dir / "lora"
        if not _done(lora):
            cfg = TrainConfig(mode="lora", steps=config.lora_steps, batch_size=config.batch_size,
                              seq_len=config.seq_len, learning_rate=config.learning_rate / 2,
                              lora_r=config.lora_r, lora_alpha=config.lora_alpha,
                              checkpoint_every=max(1, config.lora_steps // 4), seed=config.seed)  # fmt: skip
            outcome = train_folder(
                current, train_lines, lora, cfg, cache_dir=cache_dir, device=device,
                resume=(lora / "checkpoint").exists(),
                on_step=lambda step, total, loss: report("lora", step / total, f"loss {loss:.3f}"),
            )  # fmt: skip
            _mark(lora, outcome.to_dict())
        result.steps["lora"] = _info(lora)
        merged = work_dir / "merged"
        if not _done(merged):
            report("merge", 0.0, "sweeping the merging factor")
            sweep = merge_sweep_folder(
                lora / "adapter", heldout_lines, merged, MergeConfig(grid=config.merge_grid),
                cache_dir=cache_dir, base_path=current, device=device,
            )  # fmt: skip
            _mark(merged, sweep.to_dict())
        result.steps["merge"] = _info(merged)
        current = merged
    report("done", 1.0)
    result.model_dir = current
    return result


def _plain(obj: Any) -> dict[str, Any]:
    """A JSON-able summary of a report dataclass (large lists dropped)."""
    try:
        data = asdict(obj)
    except TypeError:
        data = dict(vars(obj))
    return {k: v for k, v in data.items() if not isinstance(v, (list, tuple)) or len(v) <= 32}
