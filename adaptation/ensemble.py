"""Training-free dynamic ensembles of task LoRA adapters (UDLM), with static baselines.

Task ``i`` has a peft LoRA adapter, ``ΔW_task^i = (alpha / r) · B_i · A_i``. In every LoRA
layer of the model the ensemble computes

    y = W0 · x + Σ_i G(h)_i · ΔW_task^i · x
    G(h) = softmax(TopK(h · W_Gᵀ))                  (logits outside the top k: −inf)
    W_G^i = Ŵ_G^i / ‖Ŵ_G^i‖,   Ŵ_G^i = AGG_batch(AGG_seq(L_<l(X_i)))

``h`` is the layer's own input. Row ``i`` of that layer's gate is the mean over a small
sample ``X_i`` of task ``i``'s prompts (AGG_batch) of the per-sequence mean over tokens
(AGG_seq, padding excluded) of the same layer's input, taken from the base model (adapters
off), then scaled to unit length. Nothing in the gate is trained: its rows are plain tensors
kept outside the model, computed once under ``no_grad``; no optimizer ever sees them.

Granularity: ``token`` routes each token by its own input ``h_t``; ``sequence`` routes each
token by the mean of the layer's inputs over its sequence so far,
``h̄_t = Σ_{s≤t} m_s·h_s / Σ_{s≤t} m_s`` (``m`` the attention mask): AGG_seq applied causally,
so teacher-forced scores still equal greedy decoding, and a generation with a KV cache
carries the running sums from one forward call to the next.

Static ensembles (LoRAHub-like) use the same layers with a constant ``G``: uniform ``1/n``,
or weights searched on a development set (gradient-free random search over the simplex,
scored by the mean answer NLL of the tasks). The mixing runs in forward hooks on peft's
``lora.Linear`` layers, with peft's own adapter path switched off (``disable_adapter``) while
a router is active; it reads the layers' ``lora_A``, ``lora_B``, ``lora_dropout`` and
``scaling`` so it is exactly peft's LoRA with a weight per adapter.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from adaptation.tasks import (
    TASKS,
    AdapterConfig,
    ItemScores,
    TaskItem,
    TaskSplit,
    adapters_off,
    encode_items,
    encode_prompts,
    score_batch,
)

Granularity = Literal["token", "sequence"]
GRANULARITIES: tuple[str, ...] = ("token", "sequence")
OnProgress = Callable[[str], None]


# --- the gate: pure functions -------------------------------------------------------------


def gate_weights(h: torch.Tensor, rows: torch.Tensor, top_k: int = 0) -> torch.Tensor:
    """``G(h) = softmax(TopK(h · W_Gᵀ))``: ``h`` (..., d), ``rows`` (n, d) -> (..., n).

    ``top_k`` 0 (or >= n) keeps every adapter; otherwise exactly ``top_k`` entries are
    non-zero (ties broken by ``torch.topk``) and they sum to 1.
    """
    logits = h.float() @ rows.float().T
    n = rows.shape[0]
    if 0 < top_k < n:
        keep = torch.zeros_like(logits, dtype=torch.bool)
        keep.scatter_(-1, logits.topk(top_k, dim=-1).indices, True)
        logits = logits.masked_fill(~keep, float("-inf"))
    return torch.softmax(logits, dim=-1)


def sequence_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """AGG_seq: the mean over tokens of each sequence, padding excluded: (B, T, d) -> (B, d)."""
    if mask is None:
        return x.float().mean(dim=1)
    m = mask.to(x.device, torch.float32).unsqueeze(-1)
    return (x.float() * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def gate_rows(per_task: Sequence[torch.Tensor]) -> torch.Tensor:
    """``W_G``: row i = AGG_batch of task i's sequence means (b_i, d), scaled to unit length."""
    rows = torch.stack([means.float().mean(dim=0) for means in per_task])
    return rows / rows.norm(dim=-1, keepdim=True).clamp_min(1e-12)


# --- routers ---------------------------------------------------------------------------------


class Router(Protocol):
    @property
    def tasks(self) -> tuple[str, ...]: ...

    @property
    def granularity(self) -> Granularity: ...

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

    def weights(self, layer: str, h: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self.values, dtype=torch.float32, device=h.device)


def uniform(tasks: Sequence[str]) -> StaticWeights:
    return StaticWeights(tuple(tasks), tuple(1.0 / len(tasks) for _ in tasks))


@dataclass(frozen=True)
class GateConfig:
    top_k: int = 0  # 0: every adapter
    granularity: Granularity = "sequence"

    def __post_init__(self) -> None:
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0 (0: all adapters)")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}")


@dataclass(frozen=True)
class Gate:
    """UDLM's gate: per LoRA layer, one unit row per task (``W_G``); never trained."""

    tasks: tuple[str, ...]
    rows: Mapping[str, torch.Tensor]  # LoRA layer name -> (n_tasks, d_in)
    config: GateConfig = GateConfig()

    @property
    def granularity(self) -> Granularity:
        return self.config.granularity

    def weights(self, layer: str, h: torch.Tensor) -> torch.Tensor:
        rows = self.rows[layer].to(h.device)
        return gate_weights(h, rows, self.config.top_k)

    def with_config(self, config: GateConfig) -> Gate:
        return Gate(self.tasks, self.rows, config)

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
        return cls(tuple(json.loads(meta["tasks"])), rows, GateConfig(**json.loads(meta["config"])))


# --- the ensemble inside peft's LoRA layers --------------------------------------------------


def lora_layers(model: Any) -> dict[str, Any]:
    from peft.tuners.lora.layer import Linear

    return {name: m for name, m in model.named_modules() if isinstance(m, Linear)}


@dataclass
class _Running:
    total: torch.Tensor  # (B, d) Σ m_s h_s so far
    count: torch.Tensor  # (B,) Σ m_s so far
    pos: int  # positions seen so far


class AdapterEnsemble:
    """Mixes the task adapters of a ``PeftModel`` inside its LoRA layers by a :class:`Router`.

    Idle until :meth:`routing` is entered; inside it, peft's own adapter path is off and each
    LoRA layer returns ``W0·x + Σ_i G_i · scaling_i · B_i(A_i(dropout_i(x)))``.
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
        self._mask: torch.Tensor | None = None
        self._running: dict[str, _Running] = {}
        self._seen: dict[str, int] = {}  # positions each layer has seen while routing
        self._trace: dict[int, torch.Tensor] | None = None
        self._handles = [
            layer.register_forward_hook(partial(self._hook, name))
            for name, layer in self.layers.items()
        ]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @contextmanager
    def routing(
        self, router: Router, *, attention_mask: torch.Tensor | None = None, trace: bool = False
    ) -> Iterator[AdapterEnsemble]:
        """Route every forward call inside by ``router``; running means start afresh.

        ``attention_mask`` (B, T) marks the real tokens of the first T positions (later
        positions, e.g. generated tokens, count as real); ``trace`` keeps the weights, mean
        over layers, for :meth:`traced_weights`.
        """
        if tuple(router.tasks) != self.tasks:
            raise ValueError(f"the router is for {router.tasks}, the ensemble for {self.tasks}")
        if self._router is not None:
            raise RuntimeError("already routing")
        self._router, self._mask, self._running = router, attention_mask, {}
        self._seen = {}
        self._trace = {} if trace else None
        try:
            with adapters_off(self.model):
                yield self
        finally:
            self._router, self._mask, self._running = None, None, {}

    def traced_weights(self) -> torch.Tensor:
        """(B, T, n): each position's adapter weights averaged over the LoRA layers."""
        if not self._trace:
            raise RuntimeError("nothing traced: route with trace=True and run a forward")
        parts = [self._trace[pos] for pos in sorted(self._trace)]
        return torch.cat(parts, dim=1) / len(self.layers)

    def _running_mean(self, name: str, x: torch.Tensor) -> torch.Tensor:
        batch, length = x.shape[:2]
        state = self._running.get(name)
        pos = state.pos if state else 0
        m = torch.ones((batch, length), dtype=torch.float32, device=x.device)
        if self._mask is not None and pos < self._mask.shape[1]:
            part = self._mask[:, pos : pos + length].to(x.device, torch.float32)
            m[:, : part.shape[1]] = part
        total = (x.float() * m.unsqueeze(-1)).cumsum(dim=1)
        count = m.cumsum(dim=1)
        if state is not None:
            total = total + state.total.unsqueeze(1)
            count = count + state.count.unsqueeze(1)
        self._running[name] = _Running(total[:, -1], count[:, -1], pos + length)
        return total / count.clamp_min(1.0).unsqueeze(-1)

    def _hook(self, name: str, layer: Any, args: tuple[Any, ...], output: torch.Tensor) -> Any:
        router = self._router
        if router is None:
            return None
        x = args[0]
        if x.dim() != 3:
            raise ValueError(f"{name}: expected (batch, tokens, features), got {tuple(x.shape)}")
        pos = self._seen.get(name, 0)
        self._seen[name] = pos + x.shape[1]
        h = self._running_mean(name, x) if router.granularity == "sequence" else x
        g = router.weights(name, h)
        if self._trace is not None:
            full = g.expand(*x.shape[:2], len(self.tasks)).detach().float().cpu()
            if pos not in self._trace:
                self._trace[pos] = torch.zeros_like(full)
            self._trace[pos] += full
        delta = torch.zeros_like(output)
        for i, task in enumerate(self.tasks):
            a, b = layer.lora_A[task], layer.lora_B[task]
            part = b(a(layer.lora_dropout[task](x.to(a.weight.dtype)))) * layer.scaling[task]
            delta = delta + g[..., i : i + 1].to(part.dtype) * part
        return output + delta.to(output.dtype)


# --- calibration -----------------------------------------------------------------------------


def calibrate_gate(
    model: Any,
    inputs: Mapping[str, Iterable[tuple[torch.Tensor, torch.Tensor]]],
    config: GateConfig = GateConfig(),
) -> Gate:
    """Build ``W_G`` for every LoRA layer from the base model's inputs on each task's sample.

    ``inputs`` maps each task, in adapter order, to batches ``(input_ids, attention_mask)``
    of its ``X_i``; a layer's row for the task is the normalised mean over those sequences of
    each sequence's mean input (padding excluded).
    """
    tasks = tuple(inputs)
    layers = lora_layers(model)
    if not layers:
        raise ValueError("the model has no LoRA layers")
    means: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    current: list[torch.Tensor] = []

    def record(name: str, layer: Any, args: tuple[Any, ...], output: Any) -> None:
        means[name].append(sequence_mean(args[0], current[0]).cpu())

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
            with ensemble.routing(router, attention_mask=mask, trace=index is not None):
                logits = ensemble.model(
                    input_ids=enc.input_ids.to(device), attention_mask=mask
                ).logits
                traced = ensemble.traced_weights() if index is not None else None
            correct, nll = score_batch(logits, enc.labels)
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
    tasks: tuple[str, ...] = TASKS
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    calibration_items: int = 8  # |X_i|: prompts per task for the gate
    search_candidates: int = 24  # Dirichlet draws of the static search (0: no search)
    max_test_items: int = 0  # 0: every held-out item
    batch_size: int = 32

    def __post_init__(self) -> None:
        if len(self.tasks) < 2 or len(set(self.tasks)) != len(self.tasks):
            raise ValueError("need at least two distinct tasks")
        if self.calibration_items < 1:
            raise ValueError("calibration_items must be >= 1")


UDLM_VARIANTS: dict[str, GateConfig] = {
    "UDLM token, top-all": GateConfig(0, "token"),
    "UDLM token, top-1": GateConfig(1, "token"),
    "UDLM sequence, top-all": GateConfig(0, "sequence"),
    "UDLM sequence, top-1": GateConfig(1, "sequence"),
}


@dataclass
class EnsembleReport:
    tasks: list[str]
    scores: dict[str, dict[str, float]]  # method -> task -> exact match
    routing: dict[str, dict[str, float]]  # method -> task -> mean weight on the right adapter
    static_weights: dict[str, float]
    test_items: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    train_losses: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rows(self) -> list[list[str]]:
        """Method x task exact match (%) with the mean over tasks, as table cells."""
        out = []
        for method, per_task in self.scores.items():
            values = [per_task[t] for t in self.tasks]
            cells = [f"{100 * v:.1f}" for v in values]
            out.append([method, *cells, f"{100 * sum(values) / len(values):.1f}"])
        return out


def compare_methods(
    model: Any,
    tokenizer: Any,
    splits: Mapping[str, TaskSplit],
    config: EnsembleConfig = EnsembleConfig(),
    *,
    on_progress: OnProgress | None = None,
) -> tuple[EnsembleReport, Gate]:
    """Score base, each adapter, the static ensembles, UDLM variants and the oracle.

    ``model`` is a ``PeftModel`` holding one adapter per task of ``config.tasks``.
    """
    log = on_progress or (lambda message: None)
    tasks = config.tasks
    test = {t: list(splits[t].test[: config.max_test_items or None]) for t in tasks}
    scores: dict[str, dict[str, float]] = {}
    routing: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    bs = config.batch_size

    def timed(method: str, run: Callable[[], None]) -> None:
        began = time.perf_counter()
        run()
        seconds[method] = round(time.perf_counter() - began, 2)
        row = scores.get(method, {})
        log(f"{method}: " + ", ".join(f"{t} {100 * v:.1f}" for t, v in row.items()))

    def single(method: str, adapter: str | None) -> None:
        scores[method] = {
            t: score_single(model, tokenizer, test[t], adapter, batch_size=bs).exact_match
            for t in tasks
        }

    timed("base model", lambda: single("base model", None))
    for task in tasks:
        timed(f"adapter {task}", partial(single, f"adapter {task}", task))

    ensemble = AdapterEnsemble(model, tasks)
    try:

        def routed(method: str, router: Router, trace: bool) -> None:
            scores[method], route = {}, {}
            for t in tasks:
                got, weight = score_routed(
                    ensemble,
                    router,
                    tokenizer,
                    test[t],
                    right_task=t if trace else None,
                    batch_size=bs,
                )
                scores[method][t], route[t] = got.exact_match, weight
            if trace:
                routing[method] = route

        timed("static uniform", lambda: routed("static uniform", uniform(tasks), False))
        static = uniform(tasks)
        if config.search_candidates:
            dev = {t: list(splits[t].dev) for t in tasks}
            began = time.perf_counter()
            static, loss = search_static_weights(
                ensemble, tokenizer, dev, candidates=config.search_candidates, batch_size=bs
            )
            log(
                f"static search: weights {[round(v, 3) for v in static.values]}, dev NLL "
                f"{loss:.3f} ({time.perf_counter() - began:.0f} s)"
            )
            timed("static searched (dev)", lambda: routed("static searched (dev)", static, False))

        began = time.perf_counter()
        samples = {t: list(splits[t].train[: config.calibration_items]) for t in tasks}
        gate = calibrate_on_items(model, tokenizer, samples)
        log(
            f"gate calibrated on {config.calibration_items} prompts per task "
            f"({time.perf_counter() - began:.1f} s)"
        )
        for method, gate_config in UDLM_VARIANTS.items():
            timed(method, partial(routed, method, gate.with_config(gate_config), True))
    finally:
        ensemble.remove()
    scores["oracle (right adapter)"] = {t: scores[f"adapter {t}"][t] for t in tasks}
    report = EnsembleReport(
        tasks=list(tasks),
        scores=scores,
        routing=routing,
        static_weights=dict(zip(tasks, static.values, strict=True)),
        test_items={t: len(test[t]) for t in tasks},
        seconds=seconds,
    )
    return report, gate


def _fingerprint(model_folder: Path, config: EnsembleConfig, data_dir: Path) -> dict[str, Any]:
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(Path(data_dir).glob("ru_*.tsv")):
        digest.update(path.read_bytes())
    fingerprint = {
        "model": str(Path(model_folder).resolve()),
        "tasks": list(config.tasks),
        "adapter": asdict(config.adapter),
        "data": digest.hexdigest(),
    }
    return dict(json.loads(json.dumps(fingerprint)))  # as it reads back from the file


def ensemble_folder(
    model_path: Path,
    work: Path,
    config: EnsembleConfig = EnsembleConfig(),
    *,
    cache_dir: Path,
    data_dir: Path | None = None,
    device: str = "cpu",
    on_progress: OnProgress | None = None,
) -> EnsembleReport:
    """Train one adapter per task (or reuse ``work/adapters`` made with the same settings),
    calibrate the gate (``work/gate.safetensors``), compare the methods (``work/report.json``).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adaptation.modelio import pick_device, resolve_folder
    from adaptation.tasks import (
        DATA_DIR,
        add_task_adapters,
        load_task_adapters,
        load_tasks,
        save_task_adapters,
        train_adapter,
    )

    log = on_progress or (lambda message: None)
    data_dir = Path(data_dir or DATA_DIR)
    work = Path(work)
    folder = resolve_folder(Path(model_path), Path(cache_dir))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    base.to(pick_device(device))
    splits = load_tasks(config.tasks, data_dir)
    adapters = work / "adapters"
    stamp = adapters / "fingerprint.json"
    fingerprint = _fingerprint(folder, config, data_dir)
    losses: dict[str, list[float]] = {}
    if stamp.exists() and json.loads(stamp.read_text()) == fingerprint:
        log(f"reusing the adapters in {adapters}")
        model = load_task_adapters(base, adapters, config.tasks)
        losses = json.loads((adapters / "losses.json").read_text())
    else:
        model = add_task_adapters(base, config.tasks, config.adapter)
        for task in config.tasks:
            began = time.perf_counter()
            losses[task] = train_adapter(model, tokenizer, task, splits[task].train, config.adapter)
            log(
                f"adapter {task}: {config.adapter.steps} steps, loss {losses[task][0]:.3f} -> "
                f"{losses[task][-1]:.3f} ({time.perf_counter() - began:.0f} s)"
            )
        save_task_adapters(model, adapters, config.tasks)
        (adapters / "losses.json").write_text(json.dumps(losses))
        stamp.write_text(json.dumps(fingerprint, indent=2))
    model.eval()
    report, gate = compare_methods(model, tokenizer, splits, config, on_progress=log)
    report.train_losses = {t: [v[0], v[-1]] for t, v in losses.items()}
    gate.save(work / "gate.safetensors")
    (work / "report.json").write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    return report
