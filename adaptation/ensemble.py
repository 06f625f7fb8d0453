"""Training-free dynamic ensembles of task LoRA adapters (UDLM), with static baselines.

Task ``i`` has a peft LoRA adapter, ``ΔW_task^i = (alpha / r) · B_i · A_i``. In every LoRA
layer of the model the ensemble computes

    y = W0 · x + Σ_i G(h)_i · ΔW_task^i · x
    G(h) = softmax(TopK(h · W_Gᵀ) / T)              (logits outside the top k: −inf)
    W_G^i = Ŵ_G^i / ‖Ŵ_G^i‖,   Ŵ_G^i = AGG_batch(AGG_seq(L_<l(X_i)))

``h`` is the layer's own input and ``T`` a temperature (1 by default). Row ``i`` of that
layer's gate is the mean over a small sample ``X_i`` of task ``i``'s prompts (AGG_batch) of a
per-sequence summary of the same layer's input (AGG_seq: the mean over the real tokens, or
the last real token), taken from the base model (adapters off), then scaled to unit length.
Nothing in the gate is trained: its rows are plain tensors kept outside the model, computed
once under ``no_grad``; no optimizer ever sees them.

Granularity: ``token`` routes each token by its own input ``h_t``; ``sequence`` routes each
token by AGG_seq of the layer's inputs over its sequence so far: with the mean,
``h̄_t = Σ_{s≤t} m_s·h_s / Σ_{s≤t} m_s`` (``m`` the attention mask), applied causally so
teacher-forced scores equal greedy decoding; with the last token, ``h_t`` itself (the two
granularities then coincide; the rows still differ from the mean's). A forward call that
starts a sequence (no KV cache, or an empty one) starts the running sums afresh; one that
continues a cache carries them on, so generation with and without the cache agree.

Static ensembles (LoRAHub-like) use the same layers with a constant ``G``: uniform ``1/n``,
or weights searched on a development set (gradient-free random search over the simplex,
scored by the mean answer NLL of the tasks). The mixing runs in forward hooks on peft's
``lora.Linear`` layers, with peft's own adapter path switched off (``disable_adapter``) while
a router is attached; it reads the layers' ``lora_A``, ``lora_B``, ``lora_dropout`` and
``scaling`` so it is exactly peft's LoRA with a weight per adapter (an adapter whose weight is
exactly zero for the whole batch is not computed at all).

A saved ensemble is a model folder (:func:`save_ensemble`, :func:`load_ensemble`)::

    ensemble.json          {"format": "sbs-ensemble", "version": 1, "tasks": [...],
                            "gate": {granularity, top_k, temperature, aggregation},
                            "calibration_items": {task: n}, "base": {"path": ..., shape},
                            "training": {...} | null, "evaluation": {...} | null}
    gate.safetensors       one (n_tasks, d_in) tensor of rows per LoRA layer
    adapters/<task>/       peft's adapter_config.json and adapter_model.safetensors

``ensemble.json``'s gate settings are the ones used (the copy in the safetensors metadata is
informative). Nothing in the folder is a pickle.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from adaptation.tasks import (
    RU_TASKS,
    AdapterConfig,
    ItemScores,
    TaskItem,
    TaskSplit,
    adapters_off,
    encode_items,
    encode_prompts,
    predicting,
    score_predictions,
)

Granularity = Literal["token", "sequence"]
GRANULARITIES: tuple[str, ...] = ("token", "sequence")
Aggregation = Literal["mean", "last"]
AGGREGATIONS: tuple[str, ...] = ("mean", "last")
OnProgress = Callable[[str], None]
FORMAT, VERSION = "sbs-ensemble", 1
MANIFEST, GATE_FILE, ADAPTERS = "ensemble.json", "gate.safetensors", "adapters"


# --- the gate: pure functions -------------------------------------------------------------


def gate_weights(
    h: torch.Tensor, rows: torch.Tensor, top_k: int = 0, temperature: float = 1.0
) -> torch.Tensor:
    """``G(h) = softmax(TopK(h · W_Gᵀ) / T)``: ``h`` (..., d), ``rows`` (n, d) -> (..., n).

    ``top_k`` 0 (or >= n) keeps every adapter; otherwise exactly ``top_k`` entries are
    non-zero (ties broken by ``torch.topk``), the others exactly 0, and they sum to 1.
    """
    if not temperature > 0:
        raise ValueError("temperature must be > 0")
    logits = h.float() @ rows.float().T
    n = rows.shape[0]
    if 0 < top_k < n:
        keep = torch.zeros_like(logits, dtype=torch.bool)
        keep.scatter_(-1, logits.topk(top_k, dim=-1).indices, True)
        logits = logits.masked_fill(~keep, float("-inf"))
    return torch.softmax(logits / temperature, dim=-1)


def sequence_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """AGG_seq: the mean over tokens of each sequence, padding excluded: (B, T, d) -> (B, d)."""
    if mask is None:
        return x.float().mean(dim=1)
    m = mask.to(x.device, torch.float32).unsqueeze(-1)
    return (x.float() * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def sequence_last(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """AGG_seq: each sequence's last real token (left or right padding): (B, T, d) -> (B, d)."""
    if mask is None:
        return x[:, -1].float()
    positions = torch.arange(x.shape[1], device=x.device)
    last = (mask.to(x.device).bool() * positions).argmax(dim=1)
    return x[torch.arange(x.shape[0], device=x.device), last].float()


def aggregate(x: torch.Tensor, mask: torch.Tensor | None, how: Aggregation) -> torch.Tensor:
    return sequence_last(x, mask) if how == "last" else sequence_mean(x, mask)


def gate_rows(per_task: Sequence[torch.Tensor]) -> torch.Tensor:
    """``W_G``: row i = AGG_batch of task i's sequence summaries (b_i, d), unit length."""
    rows = torch.stack([means.float().mean(dim=0) for means in per_task])
    return rows / rows.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / n`` (statsmodels); (nan, nan) for n = 0."""
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        return math.nan, math.nan
    low, high = proportion_confint(successes, n, alpha=1 - level, method="wilson")
    p = successes / n
    return max(0.0, min(float(low), p)), min(1.0, max(float(high), p))


# --- routers ---------------------------------------------------------------------------------


class Router(Protocol):
    @property
    def tasks(self) -> tuple[str, ...]: ...

    @property
    def granularity(self) -> Granularity: ...

    @property
    def aggregation(self) -> Aggregation: ...

    def weights(self, layer: str, h: torch.Tensor) -> torch.Tensor:
        """Weights per adapter, (..., n), for the layer inputs (or running means) ``h``."""
        ...


@dataclass(frozen=True)
class StaticWeights:
    """A static ensemble: the same weight per adapter for every input (LoRAHub-like)."""

    tasks: tuple[str, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.values) != len(self.tasks):
            raise ValueError("one weight per adapter")

    @property
    def granularity(self) -> Granularity:
        return "token"

    @property
    def aggregation(self) -> Aggregation:
        return "mean"

    def weights(self, layer: str, h: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self.values, dtype=torch.float32, device=h.device)


def uniform(tasks: Sequence[str]) -> StaticWeights:
    return StaticWeights(tuple(tasks), tuple(1.0 / len(tasks) for _ in tasks))


@dataclass(frozen=True)
class GateConfig:
    top_k: int = 0  # 0: every adapter
    granularity: Granularity = "sequence"
    temperature: float = 1.0  # T of softmax(TopK(h · W_Gᵀ) / T)
    aggregation: Aggregation = "mean"  # AGG_seq: mean over the tokens, or the last token

    def __post_init__(self) -> None:
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0 (0: all adapters)")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}")
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ValueError("temperature must be > 0")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateConfig:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Gate:
    """UDLM's gate: per LoRA layer, one unit row per task (``W_G``); never trained."""

    tasks: tuple[str, ...]
    rows: Mapping[str, torch.Tensor]  # LoRA layer name -> (n_tasks, d_in)
    config: GateConfig = GateConfig()

    @property
    def granularity(self) -> Granularity:
        return self.config.granularity

    @property
    def aggregation(self) -> Aggregation:
        return self.config.aggregation

    def weights(self, layer: str, h: torch.Tensor) -> torch.Tensor:
        rows = self.rows[layer]
        if rows.device != h.device:
            rows = rows.to(h.device)
        return gate_weights(h, rows, self.config.top_k, self.config.temperature)

    def with_config(self, config: GateConfig) -> Gate:
        return Gate(self.tasks, self.rows, config)

    def to(self, device: str | torch.device) -> Gate:
        return Gate(self.tasks, {k: v.to(device) for k, v in self.rows.items()}, self.config)

    def save(self, path: Path) -> Path:
        from safetensors.torch import save_file

        meta = {"tasks": json.dumps(list(self.tasks)), "config": json.dumps(asdict(self.config))}
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.rows.items()},
            str(path),
            metadata=meta,
        )
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> Gate:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata()
            rows = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        config = GateConfig.from_dict(json.loads(meta["config"]))
        return cls(tuple(json.loads(meta["tasks"])), rows, config)


# --- the ensemble inside peft's LoRA layers --------------------------------------------------


def lora_layers(model: Any) -> dict[str, Any]:
    from peft.tuners.lora.layer import Linear

    return {name: m for name, m in model.named_modules() if isinstance(m, Linear)}


@dataclass
class _Running:
    total: torch.Tensor  # (B, d) Σ m_s h_s so far
    count: torch.Tensor  # (B,) Σ m_s so far
    pos: int  # positions seen so far


def _cached_length(cache: Any) -> int:
    """Tokens already in a KV cache (0 for none)."""
    if cache is None:
        return 0
    length = getattr(cache, "get_seq_length", None)
    return int(length()) if callable(length) else 0


class AdapterEnsemble:
    """Mixes the task adapters of a ``PeftModel`` inside its LoRA layers by a :class:`Router`.

    Idle until a router is attached (:meth:`attach`, or :meth:`routing` for a block); then
    peft's own adapter path is off and each LoRA layer returns
    ``W0·x + Σ_i G_i · scaling_i · B_i(A_i(dropout_i(x)))``. A forward pre-hook on the
    transformers model reads each call's attention mask and KV cache: a call that starts a
    sequence resets the running means, one that continues a cache carries them on.
    """

    def __init__(self, model: Any, tasks: Sequence[str]):
        self.model = model
        self.tasks = tuple(tasks)
        self.layers = lora_layers(model)
        if not self.layers:
            raise ValueError("the model has no LoRA layers")
        for name, layer in self.layers.items():
            missing = [t for t in self.tasks if t not in layer.lora_A]
            if missing:
                raise ValueError(f"{name} has no adapter {', '.join(missing)}")
            if any(layer.use_dora.get(t, False) for t in self.tasks):
                raise ValueError("DoRA adapters are not supported")
        self._router: Router | None = None
        self._stack: ExitStack | None = None
        self._mask: torch.Tensor | None = None  # the routing block's mask, for calls without one
        self._call_mask: torch.Tensor | None = None  # (B, cached + T) of the current call
        self._running: dict[str, _Running] = {}
        self._seen: dict[str, int] = {}  # positions each layer has seen in this sequence
        self._trace: dict[int, torch.Tensor] | None = None
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        self._handles = [
            inner.register_forward_pre_hook(self._on_call, with_kwargs=True),
            *(
                layer.register_forward_hook(partial(self._hook, name))
                for name, layer in self.layers.items()
            ),
        ]

    @property
    def router(self) -> Router | None:
        return self._router

    def remove(self) -> None:
        self.detach()
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def attach(self, router: Router) -> None:
        """Route every forward call by ``router`` until :meth:`detach` (peft's path off)."""
        if tuple(router.tasks) != self.tasks:
            raise ValueError(f"the router is for {router.tasks}, the ensemble for {self.tasks}")
        if self._router is not None:
            raise RuntimeError("already routing")
        if not self._handles:
            raise RuntimeError("the ensemble was removed")
        stack = ExitStack()
        stack.enter_context(adapters_off(self.model))
        self._router, self._stack = router, stack
        self._reset()

    def detach(self) -> None:
        stack, self._stack = self._stack, None
        self._router, self._mask, self._call_mask = None, None, None
        self._reset()
        if stack is not None:
            stack.close()

    @contextmanager
    def routing(
        self, router: Router, *, attention_mask: torch.Tensor | None = None, trace: bool = False
    ) -> Iterator[AdapterEnsemble]:
        """Route every forward call inside by ``router``.

        ``attention_mask`` (B, T) stands for the mask of calls that pass none (the first T
        positions; later ones count as real); ``trace`` keeps the weights of the latest
        sequence, mean over layers, for :meth:`traced_weights`.
        """
        self.attach(router)
        self._mask = attention_mask
        self._trace = {} if trace else None
        try:
            yield self
        finally:
            self.detach()
            self._trace = None

    def traced_weights(self) -> torch.Tensor:
        """(B, T, n): each position's adapter weights averaged over the LoRA layers."""
        if not self._trace:
            raise RuntimeError("nothing traced: route with trace=True and run a forward")
        parts = [self._trace[pos] for pos in sorted(self._trace)]
        return torch.cat(parts, dim=1) / len(self.layers)

    def _reset(self) -> None:
        self._running, self._seen = {}, {}
        if self._trace is not None:
            self._trace = {}

    def _on_call(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self._router is None:
            return
        # transformers 5 names the KV cache ``cache``; earlier versions ``past_key_values``
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        if _cached_length(cache) == 0:
            self._reset()  # a new sequence
        mask = kwargs.get("attention_mask")
        if mask is None and len(args) > 1:
            mask = args[1]
        self._call_mask = mask if isinstance(mask, torch.Tensor) and mask.dim() == 2 else None

    def _positions_mask(self, batch: int, length: int, pos: int, device: Any) -> torch.Tensor:
        m = torch.ones((batch, length), dtype=torch.float32, device=device)
        call = self._call_mask
        if call is not None and call.shape[0] == batch and call.shape[1] >= length:
            return call[:, -length:].to(device, torch.float32)
        if self._mask is not None and pos < self._mask.shape[1]:
            part = self._mask[:, pos : pos + length].to(device, torch.float32)
            m[:, : part.shape[1]] = part
        return m

    def _running_mean(self, name: str, x: torch.Tensor) -> torch.Tensor:
        batch, length = x.shape[:2]
        state = self._running.get(name)
        pos = state.pos if state else 0
        m = self._positions_mask(batch, length, pos, x.device)
        total = (x.float() * m.unsqueeze(-1)).cumsum(dim=1)
        count = m.cumsum(dim=1)
        if state is not None:
            total = total + state.total.unsqueeze(1)
            count = count + state.count.unsqueeze(1)
        self._running[name] = _Running(total[:, -1], count[:, -1], pos + length)
        return total / count.clamp_min(1.0).unsqueeze(-1)

    def _hook(self, name: str, layer: Any, args: tuple[Any, ...], output: torch.Tensor) -> Any:
        router = self._router
        if router is None or not self.tasks:
            return None
        x = args[0]
        if x.dim() != 3:
            raise ValueError(f"{name}: expected (batch, tokens, features), got {tuple(x.shape)}")
        pos = self._seen.get(name, 0)
        self._seen[name] = pos + x.shape[1]
        sequence = router.granularity == "sequence" and router.aggregation == "mean"
        h = self._running_mean(name, x) if sequence else x
        g = router.weights(name, h)
        n = len(self.tasks)
        if self._trace is not None:
            full = g.expand(*x.shape[:2], n).detach().float().cpu()
            if pos not in self._trace:
                self._trace[pos] = torch.zeros_like(full)
            self._trace[pos] += full
        delta = torch.zeros_like(output)
        # An adapter with weight exactly 0 everywhere in the batch (outside the top k, or
        # switched off) is not computed: it adds exactly nothing.
        active = torch.nonzero((g.reshape(-1, n) != 0).any(dim=0)).flatten().tolist()
        for i in active:
            task = self.tasks[i]
            a, b = layer.lora_A[task], layer.lora_B[task]
            part = b(a(layer.lora_dropout[task](x.to(a.weight.dtype)))) * layer.scaling[task]
            delta = delta + g[..., i : i + 1].to(part.dtype) * part
        return output + delta.to(output.dtype)


def attached_ensemble(model: Any) -> AdapterEnsemble | None:
    """The ensemble :func:`load_ensemble` attached to ``model``, if any."""
    found = getattr(model, "sbs_ensemble", None)
    return found if isinstance(found, AdapterEnsemble) else None


# --- calibration -----------------------------------------------------------------------------


def calibrate_gate(
    model: Any,
    inputs: Mapping[str, Iterable[tuple[torch.Tensor, torch.Tensor]]],
    config: GateConfig = GateConfig(),
) -> Gate:
    """Build ``W_G`` for every LoRA layer from the base model's inputs on each task's sample.

    ``inputs`` maps each task, in adapter order, to batches ``(input_ids, attention_mask)``
    of its ``X_i``; a layer's row for the task is the normalised mean over those sequences of
    each sequence's AGG_seq (``config.aggregation``, padding excluded) of its input.
    """
    tasks = tuple(inputs)
    layers = lora_layers(model)
    if not layers:
        raise ValueError("the model has no LoRA layers")
    means: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    current: list[torch.Tensor] = []

    def record(name: str, layer: Any, args: tuple[Any, ...], output: Any) -> None:
        means[name].append(aggregate(args[0], current[0], config.aggregation).cpu())

    handles = [layer.register_forward_hook(partial(record, n)) for n, layer in layers.items()]
    device = next(model.parameters()).device
    per_task: dict[str, dict[str, torch.Tensor]] = {}
    try:
        with adapters_off(model), torch.no_grad():
            for task in tasks:
                for values in means.values():
                    values.clear()
                for ids, mask in inputs[task]:
                    current[:] = [mask.to(device)]
                    model(input_ids=ids.to(device), attention_mask=mask.to(device))
                if not means[next(iter(layers))]:
                    raise ValueError(f"no calibration input for {task}")
                per_task[task] = {name: torch.cat(v) for name, v in means.items()}
    finally:
        for handle in handles:
            handle.remove()
    rows = {name: gate_rows([per_task[t][name] for t in tasks]) for name in layers}
    return Gate(tasks, rows, config)


def calibrate_on_items(
    model: Any,
    tokenizer: Any,
    samples: Mapping[str, Sequence[TaskItem]],
    config: GateConfig = GateConfig(),
    *,
    batch_size: int = 16,
) -> Gate:
    """:func:`calibrate_gate` on the prompts (``[bos] prompt``) of a few items per task."""
    inputs = {
        task: [
            encode_prompts(tokenizer, items[pos : pos + batch_size])
            for pos in range(0, len(items), batch_size)
        ]
        for task, items in samples.items()
    }
    return calibrate_gate(model, inputs, config)


# --- a saved ensemble: a model folder --------------------------------------------------------


def _base_shape(config: Any) -> dict[str, Any]:
    keys = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")
    return {k: getattr(config, k, None) for k in keys}


def save_ensemble(
    folder: Path,
    model: Any,
    gate: Gate,
    *,
    base: Path | str,
    calibration_items: Mapping[str, int],
    evaluation: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``folder`` (module docstring): ``ensemble.json``, ``gate.safetensors`` and each
    task's peft adapter under ``adapters/<task>/`` (safetensors). The folder is written
    beside and renamed into place, so a reader never sees half of it."""
    folder = Path(folder)
    tasks = list(gate.tasks)
    if "default" in tasks:
        raise ValueError("'default' is peft's unnamed adapter; give the tasks other names")
    if set(calibration_items) != set(tasks):
        raise ValueError("one calibration count per task")
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "tasks": tasks,
        "gate": asdict(gate.config),
        "calibration_items": {t: int(calibration_items[t]) for t in tasks},
        "base": {"path": str(Path(base).resolve()), **_base_shape(inner.config)},
        "training": dict(training) if training is not None else None,
        "evaluation": dict(evaluation) if evaluation is not None else None,
    }
    tmp = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp / ADAPTERS, selected_adapters=tasks, safe_serialization=True)
    gate.save(tmp / GATE_FILE)
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def is_ensemble_folder(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_manifest(folder: Path) -> dict[str, Any]:
    """``ensemble.json`` of a saved ensemble, checked (format, version, tasks, gate)."""
    path = Path(folder) / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not an {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise ValueError(f"{path}: version {manifest.get('version')!r}; this code reads {VERSION}")
    tasks = manifest.get("tasks")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise ValueError(f"{path}: 'tasks' must be a non-empty list of names")
    GateConfig.from_dict(manifest.get("gate") or {})  # raises on bad settings
    return manifest


def write_evaluation(folder: Path, evaluation: Mapping[str, Any]) -> None:
    """Store an evaluation summary in ``ensemble.json`` (replaced atomically)."""
    path = Path(folder) / MANIFEST
    manifest = read_manifest(folder)
    manifest["evaluation"] = dict(evaluation)
    tmp = path.with_name(f".{MANIFEST}.partial")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)


def load_ensemble(
    folder: Path,
    *,
    base_path: Path | None = None,
    cache_dir: Path,
    device: str = "cpu",
) -> tuple[Any, Any]:
    """The ``PeftModel`` of a saved ensemble with its gate attached, and the tokenizer.

    The base is ``base_path`` when given (a GGUF file or a HF folder; the catalog knows where
    it lives), else the path in ``ensemble.json``; it must have the recorded shape. The
    model is in eval mode on ``device`` (bfloat16 on CUDA, float32 elsewhere) and routes
    every forward call and ``generate`` by the gate with the settings of ``ensemble.json``;
    :func:`attached_ensemble` returns the :class:`AdapterEnsemble` (``detach`` it to get the
    plain ``PeftModel`` back).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adaptation.modelio import pick_device, resolve_folder
    from adaptation.tasks import load_task_adapters

    folder = Path(folder)
    manifest = read_manifest(folder)
    tasks = tuple(manifest["tasks"])
    base = Path(base_path) if base_path is not None else Path(manifest["base"]["path"])
    hf_folder = resolve_folder(base, Path(cache_dir))
    device = pick_device(device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(hf_folder)
    base_model: Any = AutoModelForCausalLM.from_pretrained(hf_folder, dtype=dtype)
    recorded = {k: manifest["base"].get(k) for k in _base_shape(base_model.config)}
    found = _base_shape(base_model.config)
    if any(v is not None and found[k] != v for k, v in recorded.items()):
        raise ValueError(f"the base {base} is {found}; the ensemble was made on {recorded}")
    model = load_task_adapters(base_model, folder / ADAPTERS, tasks)
    model.to(device)
    model.eval()
    gate = Gate.load(folder / GATE_FILE)
    if gate.tasks != tasks:
        raise ValueError(f"{GATE_FILE} is for {gate.tasks}, {MANIFEST} for {tasks}")
    gate = gate.with_config(GateConfig.from_dict(manifest["gate"])).to(device)
    ensemble = AdapterEnsemble(model, tasks)
    if set(gate.rows) != set(ensemble.layers):
        ensemble.remove()
        raise ValueError(f"{GATE_FILE} has no rows for some LoRA layers of the adapters")
    ensemble.attach(gate)
    model.sbs_ensemble = ensemble
    return model, tokenizer


# --- scoring and the static search -----------------------------------------------------------


def score_routed(
    ensemble: AdapterEnsemble,
    router: Router,
    tokenizer: Any,
    items: Sequence[TaskItem],
    *,
    right_task: str | None = None,
    batch_size: int = 32,
) -> tuple[ItemScores, float]:
    """Exact match and NLL under ``router``; with ``right_task``, also the mean weight the
    router gives that task's adapter at the scored positions (averaged over layers)."""
    device = next(ensemble.model.parameters()).device
    out = ItemScores()
    weight_sum, positions = 0.0, 0
    index = ensemble.tasks.index(right_task) if right_task is not None else None
    with torch.inference_mode():
        for pos in range(0, len(items), batch_size):
            enc = encode_items(tokenizer, items[pos : pos + batch_size])
            mask = enc.attention_mask.to(device)
            keep = predicting(enc.labels).to(device)
            with ensemble.routing(router, attention_mask=mask, trace=index is not None):
                logits = ensemble.model(
                    input_ids=enc.input_ids.to(device), attention_mask=mask, logits_to_keep=keep
                ).logits
                traced = ensemble.traced_weights() if index is not None else None
            correct, nll = score_predictions(logits, enc.labels, keep)
            out.correct += correct
            out.nll += nll
            if traced is not None and index is not None:
                scored = enc.labels[:, 1:] != -100  # positions whose prediction is scored
                weight_sum += float(traced[:, :-1, index][scored].sum())
                positions += int(scored.sum())
    return out, (weight_sum / positions if positions else math.nan)


def search_static_weights(
    ensemble: AdapterEnsemble,
    tokenizer: Any,
    dev: Mapping[str, Sequence[TaskItem]],
    *,
    candidates: int = 24,
    seed: int = 0,
    batch_size: int = 32,
) -> tuple[StaticWeights, float]:
    """LoRAHub-like: one weight vector for all inputs, chosen without gradients.

    Uniform weights and ``candidates`` Dirichlet(1) draws on the simplex are scored by the
    mean over tasks of the mean answer NLL on the dev items; the lowest wins.
    """
    generator = torch.Generator().manual_seed(seed)
    n = len(ensemble.tasks)
    draws = [torch.full((n,), 1.0 / n)]
    for _ in range(candidates):
        e = -torch.log(torch.rand(n, generator=generator).clamp_min(1e-12))
        draws.append(e / e.sum())
    best: tuple[float, StaticWeights] | None = None
    for draw in draws:
        router = StaticWeights(ensemble.tasks, tuple(float(v) for v in draw))
        losses = [
            score_routed(ensemble, router, tokenizer, list(items), batch_size=batch_size)[
                0
            ].mean_nll
            for items in dev.values()
        ]
        loss = sum(losses) / len(losses)
        if best is None or loss < best[0]:
            best = (loss, router)
    assert best is not None
    return best[1], best[0]


def score_single(
    model: Any,
    tokenizer: Any,
    items: Sequence[TaskItem],
    adapter: str | None,
    *,
    batch_size: int = 32,
) -> ItemScores:
    """One peft adapter alone (``set_adapter``), or the base model when ``adapter`` is None."""
    from adaptation.tasks import model_forward, score_items

    device = next(model.parameters()).device
    if adapter is None:
        with adapters_off(model):
            return score_items(
                model_forward(model), tokenizer, items, batch_size=batch_size, device=device
            )
    model.set_adapter(adapter)
    return score_items(model_forward(model), tokenizer, items, batch_size=batch_size, device=device)


# --- the comparison --------------------------------------------------------------------------


@dataclass(frozen=True)
class EnsembleConfig:
    """How ``ensemble calibrate`` makes a saved ensemble."""

    tasks: tuple[str, ...] = RU_TASKS
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    gate: GateConfig = GateConfig(top_k=1)
    calibration_items: int = 8  # |X_i|: prompts per task for the gate

    def __post_init__(self) -> None:
        if len(self.tasks) < 2 or len(set(self.tasks)) != len(self.tasks):
            raise ValueError("need at least two distinct tasks")
        if self.calibration_items < 1:
            raise ValueError("calibration_items must be >= 1")


@dataclass(frozen=True)
class EvaluationConfig:
    """How ``ensemble evaluate`` scores a saved ensemble against the baselines."""

    search_candidates: int = 24  # Dirichlet draws of the static search (0: no search)
    max_test_items: int = 0  # 0: every held-out item (also caps the search's dev items)
    top_ks: tuple[int, ...] = (1, 2)  # UDLM rows: the saved gate with these top-k
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.search_candidates < 0 or self.max_test_items < 0 or self.batch_size < 1:
            raise ValueError("search_candidates, max_test_items >= 0 and batch_size >= 1")
        if any(k < 0 for k in self.top_ks):
            raise ValueError("top_ks must be >= 0 (0: all adapters)")


BASE, UNIFORM, SEARCHED, ORACLE = (
    "base model",
    "static uniform",
    "static searched (dev)",
    "oracle (best adapter per item)",
)


def udlm_method(top_k: int) -> str:
    return f"UDLM top-{top_k}" if top_k else "UDLM top-all"


def adapter_method(task: str) -> str:
    return f"adapter {task}"


@dataclass
class EnsembleReport:
    tasks: list[str]
    scores: dict[str, dict[str, float]]  # method -> task -> exact match
    correct: dict[str, dict[str, int]]  # method -> task -> items answered exactly
    routing: dict[str, dict[str, float]]  # method -> task -> mean weight on the right adapter
    static_weights: dict[str, float]
    test_items: dict[str, int]
    gate: dict[str, Any] = field(default_factory=dict)  # the saved gate's settings
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def interval(self, method: str, task: str) -> tuple[float, float]:
        return wilson_interval(self.correct[method][task], self.test_items[task])

    def cell(self, method: str, task: str) -> str:
        """``exact match % [95% Wilson interval]``."""
        if method not in self.scores:
            return "—"
        low, high = self.interval(method, task)
        return f"{100 * self.scores[method][task]:.1f} [{100 * low:.0f}, {100 * high:.0f}]"

    def columns(self) -> list[tuple[str, str | None]]:
        """(header, method) of the per-task table; ``None``: the task's own adapter."""
        cols: list[tuple[str, str | None]] = [("base", BASE), ("own adapter", None)]
        cols += [("static uniform", UNIFORM), ("LoRAHub-style searched", SEARCHED)]
        cols += [(m, m) for m in self.scores if m.startswith("UDLM")]
        cols.append(("oracle", ORACLE))
        return cols

    def header(self) -> list[str]:
        return ["task", "items", *(h for h, _ in self.columns())]

    def rows(self) -> list[list[str]]:
        """Per task: items and each method's exact match (%) with its 95% Wilson interval."""
        out = []
        for task in self.tasks:
            cells = [
                self.cell(method if method is not None else adapter_method(task), task)
                for _, method in self.columns()
            ]
            out.append([task, str(self.test_items[task]), *cells])
        return out


def compare_methods(
    model: Any,
    tokenizer: Any,
    splits: Mapping[str, TaskSplit],
    gate: Gate,
    config: EvaluationConfig = EvaluationConfig(),
    *,
    ensemble: AdapterEnsemble | None = None,
    on_progress: OnProgress | None = None,
) -> EnsembleReport:
    """Score base, each adapter on every task, the static ensembles, UDLM with the gate's
    settings at each of ``config.top_ks``, and the per-item oracle (right when any single
    adapter is right) on the held-out items.

    ``model`` is a ``PeftModel`` holding one adapter per task of ``gate.tasks``; an
    ``ensemble`` already on it may be given (it must be detached).
    """
    log = on_progress or (lambda message: None)
    tasks = gate.tasks
    test = {t: list(splits[t].test[: config.max_test_items or None]) for t in tasks}
    right: dict[str, dict[str, list[bool]]] = {}
    routing: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    bs = config.batch_size

    def timed(method: str, run: Callable[[], None]) -> None:
        began = time.perf_counter()
        run()
        seconds[method] = round(time.perf_counter() - began, 2)
        row = right.get(method, {})
        log(f"{method}: " + ", ".join(f"{t} {100 * _mean(v):.1f}" for t, v in row.items()))

    def single(method: str, adapter: str | None) -> None:
        right[method] = {
            t: score_single(model, tokenizer, test[t], adapter, batch_size=bs).correct
            for t in tasks
        }

    timed(BASE, lambda: single(BASE, None))
    for task in tasks:
        timed(adapter_method(task), partial(single, adapter_method(task), task))

    own = ensemble is None
    ensemble = ensemble if ensemble is not None else AdapterEnsemble(model, tasks)
    try:

        def routed(method: str, router: Router, trace: bool) -> None:
            right[method], route = {}, {}
            for t in tasks:
                got, weight = score_routed(
                    ensemble, router, tokenizer, test[t], right_task=t if trace else None,
                    batch_size=bs,
                )  # fmt: skip
                right[method][t], route[t] = got.correct, weight
            if trace:
                routing[method] = route

        timed(UNIFORM, lambda: routed(UNIFORM, uniform(tasks), False))
        static = uniform(tasks)
        if config.search_candidates:
            dev = {t: list(splits[t].dev[: config.max_test_items or None]) for t in tasks}
            began = time.perf_counter()
            static, loss = search_static_weights(
                ensemble, tokenizer, dev, candidates=config.search_candidates, batch_size=bs
            )
            log(
                f"static search: weights {[round(v, 3) for v in static.values]}, dev NLL "
                f"{loss:.3f} ({time.perf_counter() - began:.0f} s)"
            )
            timed(SEARCHED, lambda: routed(SEARCHED, static, False))
        for top_k in config.top_ks:
            variant = gate.with_config(replace(gate.config, top_k=top_k))
            timed(udlm_method(top_k), partial(routed, udlm_method(top_k), variant, True))
    finally:
        if own:
            ensemble.remove()
    singles = [right[adapter_method(t)] for t in tasks]
    right[ORACLE] = {t: [any(row) for row in zip(*(s[t] for s in singles), strict=True)]
                     for t in tasks}  # fmt: skip
    return EnsembleReport(
        tasks=list(tasks),
        scores={m: {t: _mean(v) for t, v in per.items()} for m, per in right.items()},
        correct={m: {t: sum(v) for t, v in per.items()} for m, per in right.items()},
        routing=routing,
        static_weights=dict(zip(tasks, static.values, strict=True)),
        test_items={t: len(test[t]) for t in tasks},
        gate=asdict(gate.config),
        seconds=seconds,
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table with left-aligned cells."""
    cells = [[str(c) for c in row] for row in [list(header), *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in cells]  # fmt: skip
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _mean(values: Sequence[bool]) -> float:
    return sum(values) / len(values) if values else math.nan


# --- the two steps over folders: calibrate, evaluate -----------------------------------------


def _items_digest(splits: Mapping[str, TaskSplit]) -> str:
    digest = hashlib.sha256()
    for task, split in splits.items():
        for part in (split.train, split.dev, split.test):
            for item in part:
                digest.update(f"{task}\x1f{item.prompt}\x1f{item.answer}\x1e".encode())
    return digest.hexdigest()


def _training_fingerprint(
    base_folder: Path, config: EnsembleConfig, splits: Mapping[str, TaskSplit]
) -> dict[str, Any]:
    fingerprint = {
        "base_folder": str(Path(base_folder).resolve()),
        "tasks": list(config.tasks),
        "adapter": asdict(config.adapter),
        "data_sha256": _items_digest(splits),
    }
    return dict(json.loads(json.dumps(fingerprint)))  # as it reads back from the file


def calibrate_folder(
    model_path: Path,
    out: Path,
    config: EnsembleConfig = EnsembleConfig(),
    *,
    cache_dir: Path,
    data_dir: Path | None = None,
    device: str = "cpu",
    on_progress: OnProgress | None = None,
) -> Path:
    """Train one adapter per task on its train split (or reuse those of ``out`` when it was
    made with the same base, tasks, data and adapter settings), calibrate the gate on
    ``config.calibration_items`` train prompts per task, and save the ensemble to ``out``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adaptation.modelio import pick_device, resolve_folder
    from adaptation.tasks import (
        DATA_DIR,
        add_task_adapters,
        load_task_adapters,
        load_tasks,
        train_adapter,
    )

    log = on_progress or (lambda message: None)
    out = Path(out)
    folder = resolve_folder(Path(model_path), Path(cache_dir))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    base.to(pick_device(device))
    splits = load_tasks(config.tasks, Path(data_dir or DATA_DIR))
    fingerprint = _training_fingerprint(folder, config, splits)
    previous = read_manifest(out) if is_ensemble_folder(out) else None
    if (
        previous is not None
        and {k: v for k, v in (previous.get("training") or {}).items() if k != "losses"}
        == fingerprint
    ):
        log(f"reusing the adapters in {out / ADAPTERS}")
        model = load_task_adapters(base, out / ADAPTERS, config.tasks)
        losses = previous["training"].get("losses", {})
    else:
        model = add_task_adapters(base, config.tasks, config.adapter)
        losses = {}
        for task in config.tasks:
            began = time.perf_counter()
            got = train_adapter(model, tokenizer, task, splits[task].train, config.adapter)
            losses[task] = [got[0], got[-1]]
            log(
                f"adapter {task}: {config.adapter.steps} steps, loss {got[0]:.3f} -> "
                f"{got[-1]:.3f} ({time.perf_counter() - began:.0f} s)"
            )
    model.eval()
    began = time.perf_counter()
    samples = {t: list(splits[t].train[: config.calibration_items]) for t in config.tasks}
    gate = calibrate_on_items(model, tokenizer, samples, config.gate)
    log(f"gate calibrated on {config.calibration_items} prompts per task "
        f"({time.perf_counter() - began:.1f} s)")  # fmt: skip
    return save_ensemble(
        out, model, gate, base=model_path,
        calibration_items={t: len(v) for t, v in samples.items()},
        training={**fingerprint, "losses": losses},
    )  # fmt: skip


def evaluate_folder(
    folder: Path,
    config: EvaluationConfig = EvaluationConfig(),
    *,
    base_path: Path | None = None,
    cache_dir: Path,
    data_dir: Path | None = None,
    device: str = "cpu",
    write: bool = True,
    on_progress: OnProgress | None = None,
) -> EnsembleReport:
    """Score a saved ensemble against the baselines on its tasks' held-out items; with
    ``write``, store the report as the ``evaluation`` of its ``ensemble.json``."""
    from adaptation.tasks import DATA_DIR, load_tasks

    model, tokenizer = load_ensemble(folder, base_path=base_path, cache_dir=cache_dir,
                                     device=device)  # fmt: skip
    ensemble = attached_ensemble(model)
    assert ensemble is not None
    router = ensemble.router
    assert isinstance(router, Gate)
    ensemble.detach()
    splits = load_tasks(ensemble.tasks, Path(data_dir or DATA_DIR))
    try:
        report = compare_methods(model, tokenizer, splits, router, config, ensemble=ensemble,
                                 on_progress=on_progress)  # fmt: skip
    finally:
        ensemble.attach(router)
    if write:
        write_evaluation(folder, report.to_dict())
    return report
