"""Continued training on Russian text: embeddings only, LoRA, or end-to-end LoRA.

Modes:

* ``embeddings``      only the input embeddings and the LM head are trainable (the research's
  stage after a vocabulary swap); every other tensor stays bit-identical.
* ``lora``            LoRA adapters (peft) on ``target_modules`` of a vocabulary-swapped model;
  ``ΔW = (alpha / r) · B·A``. The research used alpha 512 and 1024. With
  ``lora_embeddings`` the input embeddings and the LM head train in full beside the adapters
  (peft's ``modules_to_save``, a tied head staying tied), as ruadapt does.
* ``end_to_end_lora`` the same LoRA training on the ORIGINAL model and tokenizer (no swap),
  the research's baseline.

The loss is the mean next-token cross-entropy over packed blocks of ``seq_len`` tokens, texts
joined by the document separator the model saw in pre-training (``<|endoftext|>``, ``<eos>``,
``</s>``), never by the chat's end-of-turn token: packing with end-of-turn after every short
line teaches the model to end its answers after a few words. Throughput is reported as tokens/s and characters/s, where a block's
characters are the characters of the text its tokens encode (each token carries
``len(text) / tokens(text)`` characters), so two tokenizers compare on the same text.
The learning rate warms up linearly over ``warmup_steps`` and then follows a cosine from the
peak down to ``min_lr_ratio`` of it at the last step (``schedule="cosine"``), or stays at the
peak (``schedule="constant"``).

For a GPU: ``grad_accum`` splits each step's ``batch_size`` blocks into that many micro-batches
whose gradients add up to the whole batch's (each micro-batch loss is scaled by its share, so
the step is the same as one big batch up to rounding); ``precision="bf16"`` runs forward and
loss under ``torch.autocast`` in bfloat16 (the trainable weights and AdamW moments stay fp32);
``gradient_checkpointing`` recomputes activations in the backward pass instead of keeping them.

Checkpoints (``checkpoint/``) hold the trainable tensors and the AdamW moments as safetensors
plus ``state.json``; data order is a function of (seed, step), so a resumed run continues
exactly where it stopped.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from adaptation.modelio import heads_tied

TrainMode = Literal["embeddings", "lora", "end_to_end_lora"]
TRAIN_MODES: tuple[str, ...] = ("embeddings", "lora", "end_to_end_lora")
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
OnStep = Callable[[int, int, float], None]


@dataclass(frozen=True)
class TrainConfig:
    mode: TrainMode = "embeddings"
    steps: int = 100
    batch_size: int = 4
    seq_len: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.1
    max_grad_norm: float = 1.0
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    lora_embeddings: bool = False  # LoRA modes: also train embeddings and head in full
    checkpoint_every: int = 0  # 0: only at the end (when an output folder is given)
    seed: int = 0
    grad_accum: int = 1  # micro-batches per step; batch_size must divide by it
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast forward and loss
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.mode not in TRAIN_MODES:
            raise ValueError(f"mode must be one of {TRAIN_MODES}")
        if self.steps < 1 or self.batch_size < 1 or self.seq_len < 2:
            raise ValueError("steps, batch_size must be >= 1 and seq_len >= 2")
        if self.schedule not in ("cosine", "constant") or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("schedule must be cosine or constant, min_lr_ratio in [0, 1]")
        if self.grad_accum < 1 or self.batch_size % self.grad_accum:
            raise ValueError("grad_accum must be >= 1 and divide batch_size")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError("precision must be fp32 or bf16")

    @property
    def uses_lora(self) -> bool:
        return self.mode in ("lora", "end_to_end_lora")


@dataclass
class TrainResult:
    mode: str
    steps: int
    losses: list[float] = field(default_factory=list)
    tokens: int = 0
    chars: float = 0.0
    seconds: float = 0.0
    trainable_params: int = 0
    output: str | None = None

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def chars_per_second(self) -> float:
        return self.chars / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tokens_per_second"] = self.tokens_per_second
        out["chars_per_second"] = self.chars_per_second
        return out


DOCUMENT_SEPARATORS = ("<|endoftext|>", "<|end_of_text|>", "<eos>", "</s>")


def document_separator(tokenizer: Any) -> int | None:
    """The id that separates documents in pre-training: the first of
    :data:`DOCUMENT_SEPARATORS` the vocabulary has, else the eos token."""
    vocab = tokenizer.get_vocab()
    for token in DOCUMENT_SEPARATORS:
        if token in vocab:
            return int(vocab[token])
    eos = tokenizer.eos_token_id
    return None if eos is None else int(eos)


def learning_rate(config: TrainConfig, step: int) -> float:
    """The learning rate of 0-based ``step``: linear warmup, then cosine or constant."""
    peak = config.learning_rate
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return peak
    span = max(config.steps - config.warmup_steps - 1, 1)
    progress = min((step - config.warmup_steps) / span, 1.0)
    floor = peak * config.min_lr_ratio
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class PackedText:
    blocks: torch.Tensor  # (n, seq_len) token ids
    chars: torch.Tensor  # (n,) characters of text each block encodes


def pack_texts(tokenizer: Any, texts: Sequence[str], seq_len: int) -> PackedText:
    """Tokenise ``texts``, join them with the document separator and cut the stream into full
    blocks."""
    eos = document_separator(tokenizer)
    ids: list[int] = []
    chars: list[float] = []
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    for text, toks in zip(texts, encoded, strict=True):
        if not toks:
            continue
        ids.extend(toks)
        chars.extend([len(text) / len(toks)] * len(toks))
        if eos is not None:
            ids.append(eos)
            chars.append(0.0)
    count = len(ids) // seq_len
    if count == 0:
        raise ValueError(f"{len(ids)} tokens of text do not fill one block of {seq_len}")
    blocks = torch.tensor(ids[: count * seq_len]).view(count, seq_len)
    per_block = torch.tensor(chars[: count * seq_len], dtype=torch.float64).view(count, seq_len)
    return PackedText(blocks=blocks, chars=per_block.sum(dim=1))


def batch_indices(step: int, batch_size: int, count: int, seed: int) -> list[int]:
    """Block indices for ``step``: consecutive slices of a per-epoch seeded permutation."""
    out = []
    for k in range(step * batch_size, (step + 1) * batch_size):
        epoch, pos = divmod(k, count)
        perm = torch.randperm(count, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        out.append(int(perm[pos]))
    return out


def embedding_module_names(model: Any) -> list[str]:
    """Names (last component) of the input embedding and, if it exists, the LM head."""
    wanted = [model.get_input_embeddings(), model.get_output_embeddings()]
    names = []
    for target in wanted:
        if target is None:
            continue
        names += [n.rsplit(".", 1)[-1] for n, m in model.named_modules() if m is target][:1]
    return names


def prepare_model(model: Any, config: TrainConfig) -> Any:
    """Freeze/wrap ``model`` for the mode; returns the model to train (peft-wrapped for LoRA)."""
    if config.gradient_checkpointing:
        model.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False}
        )
        # The KV cache is off while activations are recomputed; train() puts back this value.
        model.sbs_use_cache_before_checkpointing = model.config.use_cache
        model.config.use_cache = False
    if config.uses_lora:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.target_modules),
            modules_to_save=embedding_module_names(model) if config.lora_embeddings else None,
            ensure_weight_tying=config.lora_embeddings and heads_tied(model),
            bias="none",
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, lora)
    for param in model.parameters():
        param.requires_grad_(False)
    model.get_input_embeddings().weight.requires_grad_(True)
    head = model.get_output_embeddings()
    if head is not None:
        head.weight.requires_grad_(True)
    return model


def trainable_parameters(model: Any) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(
    folder: Path, model: Any, optimizer: torch.optim.Optimizer, result: TrainResult, step: int
) -> Path:
    """Trainable tensors, AdamW moments (safetensors) and the run state (JSON)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    params = trainable_parameters(model)
    save_file(
        {n: p.detach().cpu().contiguous() for n, p in params.items()},
        folder / "trainable.safetensors",
    )
    moments: dict[str, torch.Tensor] = {}
    adam_steps: dict[str, float] = {}
    for name, param in params.items():
        state = optimizer.state.get(param, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                moments[f"{name}::{key}"] = state[key].detach().cpu().contiguous()
        if "step" in state:
            adam_steps[name] = float(state["step"])
    save_file(moments, folder / "optimizer.safetensors")
    state = {"step": step, "result": asdict(result), "adam_steps": adam_steps}
    (folder / "state.json").write_text(json.dumps(state))
    return folder


def load_checkpoint(
    folder: Path, model: Any, optimizer: torch.optim.Optimizer
) -> tuple[int, dict[str, Any]]:
    """Restore what :func:`save_checkpoint` wrote; returns (step, saved result fields)."""
    from safetensors.torch import load_file

    params = trainable_parameters(model)
    tensors = load_file(folder / "trainable.safetensors")
    if set(tensors) != set(params):
        raise ValueError("checkpoint does not match the trainable tensors of this mode")
    with torch.no_grad():
        for name, tensor in tensors.items():
            params[name].copy_(tensor)
    moments = load_file(folder / "optimizer.safetensors")
    state = json.loads((folder / "state.json").read_text())
    for name, param in params.items():
        if f"{name}::exp_avg" in moments:
            device = param.device
            optimizer.state[param] = {
                "step": torch.tensor(state["adam_steps"].get(name, 0.0)),
                "exp_avg": moments[f"{name}::exp_avg"].to(device),
                "exp_avg_sq": moments[f"{name}::exp_avg_sq"].to(device),
            }
    return int(state["step"]), state["result"]


def train(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    config: TrainConfig = TrainConfig(),
    *,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    on_step: OnStep | None = None,
) -> tuple[Any, TrainResult]:
    """Train ``model`` on ``texts``; returns (trained model, possibly peft-wrapped, result).

    With ``checkpoint_dir``, a checkpoint is written every ``checkpoint_every`` steps and at
    the end; with ``resume`` the run continues from the checkpoint found there.
    """
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        raise ValueError("the tokenizer has more tokens than the model's embedding matrix")
    torch.manual_seed(config.seed)
    model = prepare_model(model, config)
    model.train()
    device = next(model.parameters()).device
    packed = pack_texts(tokenizer, texts, config.seq_len)
    params = list(trainable_parameters(model).values())
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    result = TrainResult(mode=config.mode, steps=config.steps)
    result.trainable_params = sum(p.numel() for p in params)
    start = 0
    if resume and checkpoint_dir is not None and (checkpoint_dir / "state.json").exists():
        start, saved = load_checkpoint(checkpoint_dir, model, optimizer)
        result.losses = list(saved["losses"])
        result.tokens, result.chars, result.seconds = (
            saved["tokens"],
            saved["chars"],
            saved["seconds"],
        )
    for step in range(start, config.steps):
        lr = learning_rate(config, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = batch_indices(step, config.batch_size, packed.blocks.shape[0], config.seed)
        batch = packed.blocks[index].to(device)
        began = time.perf_counter()
        value = _accumulate(model, batch, config, device)
        if config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        result.seconds += time.perf_counter() - began
        result.tokens += batch.numel()
        result.chars += float(packed.chars[index].sum())
        result.losses.append(value)
        if not math.isfinite(value):
            raise FloatingPointError(f"loss became {value} at step {step + 1}")
        if on_step is not None:
            on_step(step + 1, config.steps, value)
        done = step + 1
        if checkpoint_dir is not None and (
            done == config.steps
            or (config.checkpoint_every and done % config.checkpoint_every == 0)
        ):
            save_checkpoint(checkpoint_dir, model, optimizer, result, done)
    model.eval()
    if config.gradient_checkpointing:
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        inner.activation_checkpointing_disable()
        # the model's own setting again (a saved model generates with its cache if it did)
        inner.config.use_cache = inner.__dict__.pop("sbs_use_cache_before_checkpointing", True)
    return model, result


def _accumulate(model: Any, batch: torch.Tensor, config: TrainConfig, device: Any) -> float:
    """Backward over ``grad_accum`` micro-batches; returns the whole batch's mean loss.

    Every block holds ``seq_len`` labelled tokens, so the batch loss is the mean of the
    micro-batch losses and each is scaled by ``1 / grad_accum``.
    """
    total = 0.0
    autocast = torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"
    )
    for micro in batch.chunk(config.grad_accum):
        with autocast:
            loss = model(input_ids=micro, labels=micro).loss / config.grad_accum
        loss.backward()
        total += float(loss.detach())
    return total


def save_trained(
    model: Any, tokenizer: Any, out_dir: Path, base_folder: Path | None = None
) -> Path:
    """Save a full model (embeddings mode) or a LoRA adapter (peft) with the tokenizer."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "peft_config") and base_folder is not None:
        for cfg in model.peft_config.values():
            cfg.base_model_name_or_path = str(Path(base_folder).resolve())
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def train_folder(
    model_path: Path,
    texts: Sequence[str],
    out_dir: Path,
    config: TrainConfig = TrainConfig(),
    *,
    cache_dir: Path,
    device: str = "cpu",
    resume: bool = False,
    on_step: OnStep | None = None,
) -> TrainResult:
    """Load a model folder (or GGUF), train it, save ``out_dir/model`` or ``out_dir/adapter``.

    ``out_dir/checkpoint`` holds the resumable checkpoint, ``out_dir/train.json`` the result.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adaptation.modelio import pick_device, resolve_folder

    folder = resolve_folder(Path(model_path), Path(cache_dir))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.to(pick_device(device))
    out_dir = Path(out_dir)
    model, result = train(
        model,
        tokenizer,
        texts,
        config,
        checkpoint_dir=out_dir / "checkpoint",
        resume=resume,
        on_step=on_step,
    )
    target = out_dir / ("adapter" if config.uses_lora else "model")
    save_trained(model, tokenizer, target, base_folder=folder)
    result.output = str(target)
    (out_dir / "train.json").write_text(json.dumps(result.to_dict(), indent=2))
    return result
