"""The merging factor: ``W = W0 + φ · ΔW`` with ``ΔW = (alpha / r) · B·A`` of a trained LoRA.

φ is applied through peft's adapter scaling (``LoraLayer.set_scale``: scaling = φ·alpha/r),
so no retraining is needed. :func:`sweep_merge_factor` scores each φ of a grid (default
0, 1/3, 1/2, 2/3, 1) on held-out text by bits per character (tokenizer-independent) and,
when a multiple-choice set is given, by accuracy; the best φ is kept (lowest bpc, or highest
accuracy with bpc breaking ties) and the merged model saved as a plain safetensors folder.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from adaptation.scoring import ChoiceItem, ScoringConfig, bits_per_character, choice_accuracy

DEFAULT_GRID = (0.0, 1 / 3, 1 / 2, 2 / 3, 1.0)
SelectBy = Literal["auto", "bpc", "accuracy"]


@dataclass(frozen=True)
class MergeConfig:
    grid: tuple[float, ...] = DEFAULT_GRID
    select_by: SelectBy = "auto"  # auto: accuracy when a choice set is given, else bpc
    scoring: ScoringConfig = field(default_factory=ScoringConfig)


@dataclass(frozen=True)
class PhiScore:
    phi: float
    bpc: float
    accuracy: float | None = None


@dataclass
class SweepResult:
    scores: list[PhiScore]
    best_phi: float
    select_by: str
    output: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lora_layers(model: Any) -> list[Any]:
    from peft.tuners.lora.layer import LoraLayer

    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def set_merge_factor(peft_model: Any, phi: float) -> None:
    """Scale every LoRA adapter of ``peft_model`` to ``φ · alpha / r``."""
    layers = lora_layers(peft_model)
    if not layers:
        raise ValueError("the model has no LoRA layers")
    for layer in layers:
        for adapter in list(layer.scaling):
            layer.set_scale(adapter, phi)


def merged_model(peft_model: Any, phi: float) -> Any:
    """A plain (peft-free) copy of the model with ``W = W0 + φ · ΔW`` merged in."""
    clone = copy.deepcopy(peft_model)
    set_merge_factor(clone, phi)
    return clone.merge_and_unload()


def sweep_merge_factor(
    peft_model: Any,
    tokenizer: Any,
    heldout: Sequence[str],
    config: MergeConfig = MergeConfig(),
    *,
    choices: Sequence[ChoiceItem] | None = None,
) -> SweepResult:
    """Score every φ of the grid and pick the best; the model is left at the best φ."""
    select_by = config.select_by
    if select_by == "auto":
        select_by = "accuracy" if choices else "bpc"
    if select_by == "accuracy" and not choices:
        raise ValueError("select_by='accuracy' needs a multiple-choice set")
    peft_model.eval()
    scores = []
    for phi in config.grid:
        set_merge_factor(peft_model, phi)
        bpc = bits_per_character(peft_model, tokenizer, heldout, config.scoring).bpc
        acc = choice_accuracy(peft_model, tokenizer, choices) if choices else None
        scores.append(PhiScore(phi=phi, bpc=bpc, accuracy=acc))
    if select_by == "accuracy":
        best = max(scores, key=lambda s: (s.accuracy or 0.0, -s.bpc))
    else:
        best = min(scores, key=lambda s: s.bpc)
    set_merge_factor(peft_model, best.phi)
    return SweepResult(scores=scores, best_phi=best.phi, select_by=select_by)


def load_choices(path: Path) -> list[ChoiceItem]:
    """A JSONL multiple-choice set: ``{"question": ..., "options": [...], "answer": i}``."""
    items = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            items.append(ChoiceItem(rec["question"], tuple(rec["options"]), int(rec["answer"])))
    return items


def merge_sweep_folder(
    adapter_dir: Path,
    heldout: Sequence[str],
    out_dir: Path,
    config: MergeConfig = MergeConfig(),
    *,
    cache_dir: Path,
    base_path: Path | None = None,
    choices: Sequence[ChoiceItem] | None = None,
    device: str = "cpu",
) -> SweepResult:
    """Load base + adapter, sweep φ, save the model merged at the best φ to ``out_dir``.

    The base defaults to the adapter's ``base_model_name_or_path``.
    """
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adaptation.modelio import pick_device, resolve_folder

    adapter_dir = Path(adapter_dir)
    if base_path is None:
        base_path = Path(PeftConfig.from_pretrained(str(adapter_dir)).base_model_name_or_path)
    folder = resolve_folder(Path(base_path), Path(cache_dir))
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(adapter_dir)).to(pick_device(device))
    result = sweep_merge_factor(model, tokenizer, heldout, config, choices=choices)
    merged = model.merge_and_unload()
    out_dir = Path(out_dir)
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    result.output = str(out_dir)
    (out_dir / "merge_sweep.json").write_text(json.dumps(result.to_dict(), indent=2))
    return result
