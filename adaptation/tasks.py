"""Small supervised tasks, one LoRA adapter per task, and their exact-match scores.

Four genuinely different tasks, generated deterministically from files in ``data/``:

* ``translate``  ``ru: кошка\\nen:`` -> `` cat`` (``data/ru_en_words.tsv``);
* ``arithmetic`` ``23 + 45 =`` -> `` 68`` (two-digit sums from a seeded generator);
* ``case``       ``lower: green house\\nupper:`` -> `` GREEN HOUSE`` (English words of the list);
* ``sentiment``  ``отзыв: Ужасный фильм\\nтон:`` -> `` плохо`` / `` хорошо``
  (``data/ru_sentiment.tsv``).

An item is encoded as ``[bos] prompt answer [eos]``; the loss and the score cover
``answer [eos]`` only. The split is a function of the item alone:
``u = sha256(task:prompt) / 2**64``; ``u < test`` is held out for evaluation, the next
``dev`` is the development set (static weight search), the rest trains the adapter and
calibrates the gate.

Exact match is computed in one teacher-forced pass: greedy decoding reproduces the answer
and stops at eos exactly when the argmax at every answer position is the answer's token
(the model is causal, so each position sees only the reference prefix that greedy decoding
would have produced). Adapters are peft LoRA adapters, one named adapter per task on one
``PeftModel`` (``add_adapter`` / ``set_adapter``), trained on the answer tokens only.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
TASKS = ("translate", "arithmetic", "case", "sentiment")
SENTIMENT_LABELS = {"pos": "хорошо", "neg": "плохо"}
# (input_ids, attention_mask) -> logits
Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TaskItem:
    task: str
    prompt: str
    answer: str


@dataclass(frozen=True)
class TaskSplit:
    train: tuple[TaskItem, ...]
    dev: tuple[TaskItem, ...]
    test: tuple[TaskItem, ...]


def _read_tsv(path: Path) -> list[tuple[str, str]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise ValueError(f"{path}:{number}: expected two tab-separated fields")
        rows.append((parts[0].strip(), parts[1].strip()))
    return rows


def _translate(data_dir: Path) -> list[TaskItem]:
    return [
        TaskItem("translate", f"ru: {ru}\nen:", f" {en}")
        for ru, en in _read_tsv(data_dir / "ru_en_words.tsv")
    ]


def _arithmetic(data_dir: Path, count: int = 240) -> list[TaskItem]:
    pairs = [(a, b) for a in range(10, 70) for b in range(10, 70)]
    random.Random(0).shuffle(pairs)
    return [TaskItem("arithmetic", f"{a} + {b} =", f" {a + b}") for a, b in pairs[:count]]


def _case(data_dir: Path, count: int = 200) -> list[TaskItem]:
    words = [en for _, en in _read_tsv(data_dir / "ru_en_words.tsv")]
    rng = random.Random(1)
    items: dict[str, TaskItem] = {}
    while len(items) < count:
        phrase = f"{rng.choice(words)} {rng.choice(words)}"
        items.setdefault(phrase, TaskItem("case", f"lower: {phrase}\nupper:", f" {phrase.upper()}"))
    return list(items.values())


def _sentiment(data_dir: Path) -> list[TaskItem]:
    rows = _read_tsv(data_dir / "ru_sentiment.tsv")
    unknown = {label for label, _ in rows} - set(SENTIMENT_LABELS)
    if unknown:
        raise ValueError(f"unknown sentiment labels {sorted(unknown)}")
    return [
        TaskItem("sentiment", f"отзыв: {text}\nтон:", f" {SENTIMENT_LABELS[label]}")
        for label, text in rows
    ]


BUILDERS: dict[str, Callable[[Path], list[TaskItem]]] = {
    "translate": _translate,
    "arithmetic": _arithmetic,
    "case": _case,
    "sentiment": _sentiment,
}


def task_items(task: str, data_dir: Path = DATA_DIR) -> list[TaskItem]:
    """Every item of ``task``, always in the same order."""
    if task not in BUILDERS:
        raise ValueError(f"unknown task {task!r}; have {', '.join(BUILDERS)}")
    return BUILDERS[task](Path(data_dir))


def split_items(items: Sequence[TaskItem], test: float = 0.25, dev: float = 0.1) -> TaskSplit:
    """Deterministic train / dev / test split by the hash of each item (module docstring)."""
    if test <= 0 or dev < 0 or test + dev >= 1:
        raise ValueError("need 0 < test, 0 <= dev and test + dev < 1")
    parts: dict[str, list[TaskItem]] = {"train": [], "dev": [], "test": []}
    for item in items:
        digest = hashlib.sha256(f"{item.task}:{item.prompt}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        parts["test" if u < test else "dev" if u < test + dev else "train"].append(item)
    return TaskSplit(**{k: tuple(v) for k, v in parts.items()})


def load_tasks(
    tasks: Sequence[str] = TASKS, data_dir: Path = DATA_DIR, test: float = 0.25, dev: float = 0.1
) -> dict[str, TaskSplit]:
    return {t: split_items(task_items(t, data_dir), test, dev) for t in tasks}


@dataclass(frozen=True)
class Encoded:
    input_ids: torch.Tensor  # (B, T), right-padded
    attention_mask: torch.Tensor  # (B, T)
    labels: torch.Tensor  # (B, T): answer tokens and eos, -100 elsewhere


def encode_items(tokenizer: Any, items: Sequence[TaskItem]) -> Encoded:
    """``[bos] prompt answer [eos]`` per item, right-padded; labels on ``answer [eos]``."""
    from adaptation.scoring import start_token_id

    start, eos = start_token_id(tokenizer), tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos token")
    rows: list[tuple[list[int], int]] = []
    for item in items:
        prompt = tokenizer(item.prompt, add_special_tokens=False)["input_ids"]
        answer = tokenizer(item.answer, add_special_tokens=False)["input_ids"]
        rows.append(([start, *prompt, *answer, eos], 1 + len(prompt)))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    labels = torch.full_like(input_ids, -100)
    for row, (ids, answer_from) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
        labels[row, answer_from : len(ids)] = torch.tensor(ids[answer_from:])
    return Encoded(input_ids=input_ids, attention_mask=mask, labels=labels)


def prompt_ids(tokenizer: Any, item: TaskItem) -> list[int]:
    """``[bos] prompt``: what a generation for ``item`` starts from."""
    from adaptation.scoring import start_token_id

    ids = tokenizer(item.prompt, add_special_tokens=False)["input_ids"]
    return [start_token_id(tokenizer), *ids]


def encode_prompts(
    tokenizer: Any, items: Sequence[TaskItem], *, left_pad: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[bos] prompt`` per item, padded (right by default), and the attention mask."""
    rows = [prompt_ids(tokenizer, item) for item in items]
    width = max(len(ids) for ids in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for row, ids in enumerate(rows):
        span = slice(width - len(ids), width) if left_pad else slice(0, len(ids))
        input_ids[row, span] = torch.tensor(ids)
        mask[row, span] = 1
    return input_ids, mask


def model_forward(model: Any) -> Forward:
    def forward(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return model(input_ids=input_ids, attention_mask=attention_mask).logits

    return forward


@dataclass
class ItemScores:
    correct: list[bool] = field(default_factory=list)
    nll: list[float] = field(default_factory=list)  # nats over answer tokens and eos

    @property
    def exact_match(self) -> float:
        return sum(self.correct) / len(self.correct) if self.correct else math.nan

    @property
    def mean_nll(self) -> float:
        return sum(self.nll) / len(self.nll) if self.nll else math.nan


def score_batch(logits: torch.Tensor, labels: torch.Tensor) -> tuple[list[bool], list[float]]:
    """Per row: is the argmax right at every labelled position, and the summed NLL there."""
    shifted = logits[:, :-1].float()
    targets = labels[:, 1:].to(shifted.device)
    keep = targets != -100
    nll = torch.nn.functional.cross_entropy(
        shifted.transpose(1, 2), targets.clamp_min(0), reduction="none"
    )
    right = (shifted.argmax(-1) == targets) | ~keep
    return right.all(dim=1).tolist(), (nll * keep).sum(dim=1).tolist()


def score_items(
    forward: Forward,
    tokenizer: Any,
    items: Sequence[TaskItem],
    *,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> ItemScores:
    """Teacher-forced exact match (== greedy decoding, see the module docstring) and NLL."""
    out = ItemScores()
    with torch.inference_mode():
        for pos in range(0, len(items), batch_size):
            enc = encode_items(tokenizer, items[pos : pos + batch_size])
            logits = forward(enc.input_ids.to(device), enc.attention_mask.to(device))
            correct, nll = score_batch(logits, enc.labels)
            out.correct += correct
            out.nll += nll
    return out


@dataclass(frozen=True)
class AdapterConfig:
    steps: int = 150
    batch_size: int = 16
    learning_rate: float = 1e-3
    lora_r: int = 8
    lora_alpha: float = 16.0
    target_modules: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    seed: int = 0

    def lora_config(self) -> Any:
        from peft import LoraConfig

        return LoraConfig(
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=0.0,
            target_modules=list(self.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )


@contextmanager
def adapters_off(model: Any) -> Iterator[None]:
    """Switch peft's adapter path off (``disable_adapter``) and keep every grad flag as it was.

    peft freezes the adapters when it disables them and unfreezes the active one after;
    here the flags are restored at once, so a caller may still train the LoRA matrices
    through a path of its own (the ensemble's hooks).
    """
    flags = {name: p.requires_grad for name, p in model.named_parameters()}

    def restore() -> None:
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])

    try:
        with model.disable_adapter():
            restore()
            yield
    finally:
        restore()


def add_task_adapters(base: Any, tasks: Sequence[str], config: AdapterConfig) -> Any:
    """Wrap ``base`` in one ``PeftModel`` with a fresh LoRA adapter named after each task."""
    from peft import get_peft_model

    torch.manual_seed(config.seed)
    model = get_peft_model(base, config.lora_config(), adapter_name=tasks[0])
    for task in tasks[1:]:
        model.add_adapter(task, config.lora_config())
    return model


def train_adapter(
    model: Any,
    tokenizer: Any,
    task: str,
    items: Sequence[TaskItem],
    config: AdapterConfig,
    *,
    on_step: Callable[[int, int, float], None] | None = None,
) -> list[float]:
    """Train the adapter named ``task`` of a ``PeftModel`` on ``items``; returns the losses.

    Only that adapter's LoRA matrices are trainable (peft's ``set_adapter``); batches are
    consecutive slices of a per-epoch permutation seeded by (seed, task, epoch).
    """
    device = next(model.parameters()).device
    model.set_adapter(task)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    task_seed = int.from_bytes(hashlib.sha256(task.encode()).digest()[:4], "big")
    model.train()
    losses: list[float] = []
    order: list[int] = []
    epoch = 0
    for step in range(config.steps):
        batch: list[TaskItem] = []
        while len(batch) < config.batch_size:
            if not order:
                gen = torch.Generator().manual_seed(config.seed * 7919 + task_seed + epoch)
                order = torch.randperm(len(items), generator=gen).tolist()
                epoch += 1
            batch.append(items[order.pop()])
        enc = encode_items(tokenizer, batch)
        loss = model(
            input_ids=enc.input_ids.to(device),
            attention_mask=enc.attention_mask.to(device),
            labels=enc.labels.to(device),
        ).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"{task}: loss became {losses[-1]} at step {step + 1}")
        if on_step is not None:
            on_step(step + 1, config.steps, losses[-1])
    model.eval()
    return losses


def load_task_adapters(base: Any, folder: Path, tasks: Sequence[str]) -> Any:
    """A ``PeftModel`` with the adapters saved under ``folder/<task>`` (peft's own format)."""
    from peft import PeftModel

    folder = Path(folder)
    model = PeftModel.from_pretrained(base, folder / tasks[0], adapter_name=tasks[0])
    for task in tasks[1:]:
        model.load_adapter(folder / task, adapter_name=task)
    model.eval()
    return model


def save_task_adapters(model: Any, folder: Path, tasks: Sequence[str]) -> Path:
    """Save each task's adapter to ``folder/<task>`` (peft nests named adapters so)."""
    if "default" in tasks:
        raise ValueError("'default' is peft's unnamed adapter; give the tasks other names")
    model.save_pretrained(Path(folder), selected_adapters=list(tasks))
    return Path(folder)
