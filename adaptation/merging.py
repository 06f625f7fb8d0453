"""The merging factor: ``W = W0 + φ · ΔW`` with ``ΔW = (alpha / r) · B·A`` of a trained LoRA,
and φ chosen by the trade-off between the Russian gain and forgetting.

φ is applied through peft's adapter scaling (``LoraLayer.set_scale``: scaling = φ·alpha/r),
so no retraining is needed. Modules trained in full beside the adapters (peft's
``modules_to_save``: embeddings and head under ``lora_embeddings``) are interpolated the same
way, ``W = W0 + φ · (W1 − W0)``. :func:`sweep_merge_factor` scores every φ of a grid (default 0,
1/3, 1/2, 2/3, 1) and φ = 0 (the model before the LoRA, the reference) on:

* the **Russian gain**: bits per character on the Russian held-out text,
  ``gain(φ) = bpc(0) - bpc(φ)`` and ``relative_gain(φ) = gain(φ) / bpc(0)``;
* **forgetting** per category: bits per character on the held-out texts by category
  (``adaptation.benchmarks.heldout_texts``: Russian general knowledge, reasoning over a text,
  text understanding, English), ``f_c(φ) = (bpc_c(φ) - bpc_c(0)) / bpc_c(0)``, and, when a
  multiple-choice set is given, ``acc_norm`` per category (``adaptation.scoring``, cloze
  format), ``f_c(φ) = (acc_c(0) - acc_c(φ)) / acc_c(0)`` (the absolute drop where
  ``acc_c(0) = 0``); ``forgetting(φ) = max(0, max_c f_c)``.

A selection rule (:data:`RULES`) picks φ; the default, ``tradeoff``, takes the largest gain
among the φ whose forgetting is within ``tolerance`` (relative, default 2 %) of the reference,
falling back to the least forgetting when none is (recorded as such). The others: ``bpc``
(lowest Russian bpc: the rule before forgetting was measured), ``accuracy`` (highest
multiple-choice accuracy, bpc breaking ties), ``min_forgetting``, ``balanced`` (largest
``relative_gain - forgetting``). The rule, the tolerance and the whole curve are in the
:class:`SweepResult` (the pipeline records it in the model's recipe); :func:`tradeoff_svg`
draws it.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from adaptation.benchmarks import MCItem
from adaptation.registry import Registry
from adaptation.scoring import (
    ChoiceConfig,
    ChoiceItem,
    ScoringConfig,
    bits_per_character,
    bpc_by_category,
    choice_metrics,
    score_choices,
)

DEFAULT_GRID = (0.0, 1 / 3, 1 / 2, 2 / 3, 1.0)
DEFAULT_TOLERANCE = 0.02
REFERENCE_PHI = 0.0


@dataclass(frozen=True)
class MergeConfig:
    grid: tuple[float, ...] = DEFAULT_GRID
    select_by: str = (
        "tradeoff"  # a rule of RULES ("auto": accuracy with a choice set, else tradeoff)
    )
    tolerance: float = DEFAULT_TOLERANCE  # relative forgetting allowed by "tradeoff"
    # forgetting categories: the shipped held-out texts by category (None: none)
    forgetting_texts: str | None = "shipped"
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    choice: ChoiceConfig = field(default_factory=ChoiceConfig)


@dataclass(frozen=True)
class PhiScore:
    phi: float
    bpc: float  # Russian held-out bits per character
    accuracy: float | None = None  # multiple-choice acc_norm, when a set is given
    bpc_by_category: dict[str, float] = field(default_factory=dict)
    accuracy_by_category: dict[str, float] = field(default_factory=dict)
    gain: float = 0.0  # bpc(0) - bpc(phi), bits per character
    relative_gain: float = 0.0
    forgetting_by_category: dict[str, float] = field(default_factory=dict)  # f_c(phi)
    forgetting: float = 0.0  # max(0, max_c f_c)
    within_tolerance: bool = True


@dataclass
class SweepResult:
    scores: list[PhiScore]  # the curve: the grid (and the reference), by phi
    best_phi: float
    select_by: str  # the rule that chose best_phi
    tolerance: float = DEFAULT_TOLERANCE
    reference_phi: float = REFERENCE_PHI
    fallback: bool = False  # "tradeoff" found no phi within tolerance
    output: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Rule = Callable[[Sequence[PhiScore], float], PhiScore]


@dataclass(frozen=True)
class SelectionRule:
    label: str
    choose: Rule
    needs_choices: bool = False


RULES: Registry[SelectionRule] = Registry("selection rule")


def selection_rule(name: str, label: str, *, needs_choices: bool = False) -> Callable[[Rule], Rule]:
    def register(choose: Rule) -> Rule:
        RULES.add(name, SelectionRule(label, choose, needs_choices))
        return choose

    return register


@selection_rule("tradeoff", "largest Russian gain with forgetting within the tolerance")
def _tradeoff(candidates: Sequence[PhiScore], tolerance: float) -> PhiScore:
    allowed = [s for s in candidates if s.forgetting <= tolerance]
    if not allowed:  # none within tolerance: the least forgetting (SweepResult.fallback)
        return min(candidates, key=lambda s: (s.forgetting, -s.gain, s.phi))
    return max(allowed, key=lambda s: (s.gain, -s.phi))


@selection_rule("bpc", "lowest Russian bits per character")
def _lowest_bpc(candidates: Sequence[PhiScore], tolerance: float) -> PhiScore:
    return min(candidates, key=lambda s: (s.bpc, s.phi))


@selection_rule(
    "accuracy", "highest multiple-choice accuracy (bpc breaks ties)", needs_choices=True
)
def _accuracy(candidates: Sequence[PhiScore], tolerance: float) -> PhiScore:
    return max(candidates, key=lambda s: (s.accuracy or 0.0, -s.bpc, -s.phi))


@selection_rule("min_forgetting", "least forgetting (gain breaks ties)")
def _min_forgetting(candidates: Sequence[PhiScore], tolerance: float) -> PhiScore:
    return min(candidates, key=lambda s: (s.forgetting, -s.gain, s.phi))


@selection_rule("balanced", "largest relative gain minus forgetting")
def _balanced(candidates: Sequence[PhiScore], tolerance: float) -> PhiScore:
    return max(candidates, key=lambda s: (s.relative_gain - s.forgetting, -s.phi))


def lora_layers(model: Any) -> list[Any]:
    from peft.tuners.lora.layer import LoraLayer

    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def _interpolate_saved_modules(peft_model: Any, phi: float) -> None:
    """Each ``modules_to_save`` copy becomes ``W0 + φ · (W1 − W0)`` (W0 the frozen original).

    W1 is kept on the module itself the first time (so a deep copy keeps it too).
    """
    from peft.utils.other import ModulesToSaveWrapper

    for wrapper in peft_model.modules():
        if not isinstance(wrapper, ModulesToSaveWrapper):
            continue
        for module in wrapper.modules_to_save.values():
            if not hasattr(module, "merge_trained_weights"):
                module.merge_trained_weights = {
                    n: p.detach().clone() for n, p in module.named_parameters()
                }
            trained = module.merge_trained_weights
            with torch.no_grad():
                for name, param in module.named_parameters():
                    w0 = wrapper.original_module.get_parameter(name)
                    param.copy_(w0 + phi * (trained[name] - w0))


def set_merge_factor(peft_model: Any, phi: float) -> None:
    """Scale every LoRA adapter of ``peft_model`` to ``φ · alpha / r`` (and interpolate the
    fully trained modules by φ)."""
    layers = lora_layers(peft_model)
    if not layers:
        raise ValueError("the model has no LoRA layers")
    for layer in layers:
        for adapter in list(layer.scaling):
            layer.set_scale(adapter, phi)
    _interpolate_saved_modules(peft_model, phi)


def merged_model(peft_model: Any, phi: float) -> Any:
    """A plain (peft-free) copy of the model with ``W = W0 + φ · ΔW`` merged in."""
    clone = copy.deepcopy(peft_model)
    set_merge_factor(clone, phi)
    return clone.merge_and_unload()


def _relative_drop(reference: float, value: float) -> float:
    return (reference - value) / reference if reference else reference - value


def as_items(choices: Sequence[MCItem | ChoiceItem]) -> list[MCItem]:
    """Multiple-choice items; the older :class:`ChoiceItem` (question, options, answer) is
    an item of the category "all"."""
    return [
        c if isinstance(c, MCItem) else MCItem(c.question, tuple(c.options), c.answer)
        for c in choices
    ]


def _forgetting_texts(
    config: MergeConfig, given: Mapping[str, Sequence[str]] | None
) -> dict[str, list[str]]:
    if given is not None:
        return {k: list(v) for k, v in given.items()}
    if config.forgetting_texts == "shipped":
        from adaptation.benchmarks import heldout_texts

        return heldout_texts()
    return {}


def sweep_merge_factor(
    peft_model: Any,
    tokenizer: Any,
    heldout: Sequence[str],
    config: MergeConfig = MergeConfig(),
    *,
    choices: Sequence[MCItem | ChoiceItem] | None = None,
    forgetting_texts: Mapping[str, Sequence[str]] | None = None,
) -> SweepResult:
    """Score every φ of the grid and φ = 0, pick one by ``config.select_by`` (module
    docstring); the model is left at the chosen φ.

    ``forgetting_texts`` (category -> texts) overrides the shipped held-out texts; the
    multiple-choice items count by their category.
    """
    rule_name = config.select_by
    if rule_name == "auto":
        rule_name = "accuracy" if choices else "tradeoff"
    rule = RULES.lookup(rule_name)
    if rule.needs_choices and not choices:
        raise ValueError(f"select_by={rule_name!r} needs a multiple-choice set")
    texts = _forgetting_texts(config, forgetting_texts)
    items = as_items(choices or [])
    peft_model.eval()
    raw = []
    for phi in sorted({*config.grid, REFERENCE_PHI}):
        set_merge_factor(peft_model, phi)
        bpc = bits_per_character(peft_model, tokenizer, heldout, config.scoring).bpc
        per_text = {
            c: r.bpc
            for c, r in bpc_by_category(peft_model, tokenizer, texts, config.scoring).items()
        }
        metrics = choice_metrics(
            [i.category or "all" for i in items],
            score_choices(peft_model, tokenizer, items, config.choice),
        )
        per_choice = {c: m["acc_norm"] for c, m in metrics.categories.items()}
        accuracy = metrics.acc_norm
        raw.append((phi, bpc, accuracy, per_text, per_choice))
    ref = next(r for r in raw if r[0] == REFERENCE_PHI)
    scores = []
    for phi, bpc, accuracy, per_text, per_choice in raw:
        forgetting = {f"bpc:{c}": (v - ref[3][c]) / ref[3][c] for c, v in per_text.items()}
        forgetting |= {f"acc:{c}": _relative_drop(ref[4][c], v) for c, v in per_choice.items()}
        worst = max([0.0, *forgetting.values()])
        scores.append(
            PhiScore(
                phi=phi, bpc=bpc, accuracy=accuracy, bpc_by_category=per_text,
                accuracy_by_category=per_choice, gain=ref[1] - bpc,
                relative_gain=(ref[1] - bpc) / ref[1] if ref[1] else 0.0,
                forgetting_by_category=forgetting, forgetting=worst,
                within_tolerance=worst <= config.tolerance,
            )
        )  # fmt: skip
    candidates = [s for s in scores if s.phi in config.grid]
    best = rule.choose(candidates, config.tolerance)
    set_merge_factor(peft_model, best.phi)
    return SweepResult(
        scores=scores, best_phi=best.phi, select_by=rule_name, tolerance=config.tolerance,
        fallback=rule_name == "tradeoff" and not best.within_tolerance,
    )  # fmt: skip


def tradeoff_svg(result: SweepResult | Mapping[str, Any], *, title: str = "") -> str:
    """The sweep's curve as an SVG: Russian gain and forgetting (both relative to φ = 0, in
    percent) against φ, the tolerance as a dashed line, the chosen φ marked."""
    import matplotlib
    from matplotlib.figure import Figure

    data = result.to_dict() if isinstance(result, SweepResult) else dict(result)
    scores = sorted(data["scores"], key=lambda s: s["phi"])
    phis = [s["phi"] for s in scores]
    with matplotlib.rc_context({"svg.hashsalt": "sbs", "svg.fonttype": "none"}):
        fig = Figure(figsize=(6.4, 3.6), layout="constrained")
        ax = fig.add_subplot()
        ax.plot(phis, [100 * s["relative_gain"] for s in scores], "o-", label="Russian gain")
        ax.plot(
            phis, [100 * s["forgetting"] for s in scores], "s-", label="forgetting (worst category)"
        )
        for category in sorted(scores[0]["forgetting_by_category"]):
            ax.plot(phis, [100 * s["forgetting_by_category"][category] for s in scores],
                    linewidth=0.8, alpha=0.5, label=category)  # fmt: skip
        ax.axhline(100 * data["tolerance"], color="grey", linestyle="--", linewidth=1,
                   label=f"tolerance {100 * data['tolerance']:g} %")  # fmt: skip
        ax.axvline(data["best_phi"], color="black", linewidth=1,
                   label=f"chosen φ = {data['best_phi']:.3g} ({data['select_by']})")  # fmt: skip
        ax.set_xlabel("merging factor φ")
        ax.set_ylabel("% relative to φ = 0")
        ax.set_title(title or "Merging factor: Russian gain against forgetting")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def load_choices(path: Path) -> list[MCItem]:
    """A multiple-choice set: a benchmark file (``adaptation.benchmarks.read_items``:
    ``question``, ``choices``, ``answer``, ...) or the older JSONL with ``options`` in place
    of ``choices``."""
    path = Path(path)
    lines = [line for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    if path.suffix == ".jsonl" and lines and "options" in json.loads(lines[0]):
        records = [json.loads(line) for line in lines]
        return [
            MCItem(
                r["question"],
                tuple(r["options"]),
                int(r["answer"]),
                category=str(r.get("category", "")),
            )  # fmt: skip
            for r in records
        ]
    from adaptation.benchmarks import read_items

    return read_items(path)


def merge_sweep_folder(
    adapter_dir: Path,
    heldout: Sequence[str],
    out_dir: Path,
    config: MergeConfig = MergeConfig(),
    *,
    cache_dir: Path,
    base_path: Path | None = None,
    choices: Sequence[MCItem | ChoiceItem] | None = None,
    forgetting_texts: Mapping[str, Sequence[str]] | None = None,
    device: str = "cpu",
) -> SweepResult:
    """Load base + adapter, sweep φ, save the model merged at the chosen φ to ``out_dir``
    with the curve (``merge_sweep.json``) and its plot (``merge_sweep.svg``).

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
    result = sweep_merge_factor(
        model, tokenizer, heldout, config, choices=choices, forgetting_texts=forgetting_texts,
    )  # fmt: skip
    merged = model.merge_and_unload()
    out_dir = Path(out_dir)
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    result.output = str(out_dir)
    (out_dir / "merge_sweep.json").write_text(json.dumps(result.to_dict(), indent=2))
    (out_dir / "merge_sweep.svg").write_text(tradeoff_svg(result))
    return result
