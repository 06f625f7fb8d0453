"""Small supervised tasks, one LoRA adapter per task, and their exact-match scores.

Toy tasks, generated deterministically from files in ``data/``:

* ``translate``  ``ru: кошка\nen:`` -> `` cat`` (``data/ru_en_words.tsv``);
* ``arithmetic`` ``23 + 45 =`` -> `` 68`` (two-digit sums from a seeded generator);
* ``case``       ``lower: green house\nupper:`` -> `` GREEN HOUSE`` (English words of the list);
* ``sentiment``  ``отзыв: Ужасный фильм\nтон:`` -> `` плохо`` / `` хорошо``
  (``data/ru_sentiment.tsv``).

Real Russian tasks (:data:`RU_TASKS`), read from packages installed from PyPI through the
loaders of ``adaptation.benchmarks`` and ``adaptation.corpus``:

* ``wsd``        which sense a word has in a context (``rl-wsd-labeled``), as lettered
  options (``adaptation.scoring``'s lettered prompt) -> `` B``; the context is cut to the
  words around the target, the ``word N:`` prefix of each sense is dropped;
* ``medical``    Novosibirsk medical exam questions (``mednsktest``), lettered -> `` C``;
* ``definition`` ``Определение: …\nСлово:`` -> `` кемпинг``: a Wiktionary definition of a
  one-sense word of ``wiki-ru-wordnet`` that does not give the word away.

Each keeps only short prompts (at most :data:`MAX_PROMPT_CHARS` characters, four or five
options) so a 135M model trains and scores them on a CPU, and then the
:data:`RU_TASK_ITEMS` items whose key hashes lowest (sha256 of ``task:key``): the choice
depends on nothing but the item.

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
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
TASKS = ("translate", "arithmetic", "case", "sentiment")
RU_TASKS = ("wsd", "medical", "definition")
RU_TASK_ITEMS = 160  # items kept per Russian task
MAX_PROMPT_CHARS = 260
SENTIMENT_LABELS = {"pos": "хорошо", "neg": "плохо"}
# (input_ids, attention_mask, keep) -> logits (N, V) at the N positions where keep (B, T) is set
Forward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


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


def _lowest_hashes(task: str, keyed: Iterable[tuple[str, TaskItem]], count: int) -> list[TaskItem]:
    """The ``count`` items whose ``sha256(task:key)`` is lowest, in that order; one per prompt."""
    ranked = sorted(
        (hashlib.sha256(f"{task}:{key}".encode()).hexdigest(), item) for key, item in keyed
    )
    out: dict[str, TaskItem] = {}
    for _, item in ranked:
        out.setdefault(item.prompt, item)
        if len(out) == count:
            break
    return list(out.values())


def _lettered(task: str, item: Any, max_choices: int) -> TaskItem | None:
    """A multiple-choice item as lettered options, the gold letter as the answer."""
    from adaptation.scoring import ChoiceConfig, choice_requests

    if len(item.choices) > max_choices:
        return None
    prompt, continuations = choice_requests(item, ChoiceConfig(prompt_format="lettered"))
    if len(prompt) > MAX_PROMPT_CHARS:
        return None
    return TaskItem(task, prompt, continuations[item.answer])


def _window(text: str, word: str, side: int = 50) -> str | None:
    """``word`` in ``text`` with at most ``side`` characters each way, cut between words."""
    at = text.find(word)
    if at < 0:
        return None
    left, right = text[:at], text[at + len(word) :]
    if len(left) > side:
        left = left[-side:]
        left = left[left.find(" ") + 1 :] if " " in left else ""
    if len(right) > side:
        right = right[:side]
        right = right[: right.rfind(" ")] if " " in right else ""
    return (left + word + right).strip()


def _wsd(data_dir: Path, count: int = RU_TASK_ITEMS) -> list[TaskItem]:
    from adaptation.benchmarks import rl_wsd_items

    keyed = []
    for item in rl_wsd_items():
        found = re.search("«(.+)»", item.question)
        context = _window(item.context, found.group(1)) if found else None
        choices = tuple(re.sub(r"^\S+ \d+:\s*", "", c) for c in item.choices)
        if found is None or context is None or len(set(choices)) != len(choices):
            continue
        question = f"В каком значении здесь слово «{found.group(1)}»?"
        posed = replace(item, question=question, context=context, choices=choices)
        task_item = _lettered("wsd", posed, max_choices=4)
        if task_item is not None:
            keyed.append((item.id, task_item))
    return _lowest_hashes("wsd", keyed, count)


def _medical(data_dir: Path, count: int = RU_TASK_ITEMS) -> list[TaskItem]:
    from adaptation.benchmarks import mednsk_items

    keyed = [(item.id, _lettered("medical", item, max_choices=5)) for item in mednsk_items()]
    return _lowest_hashes("medical", [(k, i) for k, i in keyed if i is not None], count)


def _definition(data_dir: Path, count: int = RU_TASK_ITEMS) -> list[TaskItem]:
    """Definition -> word over the words of one sense (a unique answer) of 4-12 letters."""
    from adaptation.corpus import strip_wiki, wordnet_db_path

    senses: dict[str, list[str]] = {}
    db = wordnet_db_path()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        for lemma, row in conn.execute("SELECT lemma, definition FROM synsets ORDER BY rowid"):
            if re.fullmatch("[а-яё]{4,12}", lemma):
                senses.setdefault(lemma, []).append(row)
    ranked = sorted(
        (hashlib.sha256(f"definition:{lemma}".encode()).hexdigest(), lemma, rows[0])
        for lemma, rows in senses.items()
        if len(rows) == 1
    )
    items: list[TaskItem] = []
    for _, lemma, row in ranked:
        fields = row.split("~")  # as adaptation.corpus.wordnet_lines reads a row
        definition, _ = strip_wiki("~".join(fields[4:-2]) if len(fields) >= 7 else row)
        if not 20 <= len(definition) <= 90 or lemma[:4] in definition.lower():
            continue
        if not re.search("[а-яё]{3}", definition) or "значению" in definition:
            continue
        items.append(TaskItem("definition", f"Определение: {definition}\nСлово:", f" {lemma}"))
        if len(items) == count:
            break
    return items


BUILDERS: dict[str, Callable[[Path], list[TaskItem]]] = {
    "translate": _translate,
    "arithmetic": _arithmetic,
    "case": _case,
    "sentiment": _sentiment,
    "wsd": _wsd,
    "medical": _medical,
    "definition": _definition,
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
    """``model`` as a :data:`Forward`: the LM head runs only at the kept positions
    (transformers' ``logits_to_keep`` with a boolean mask)."""

    def forward(
        input_ids: torch.Tensor, attention_mask: torch.Tensor, keep: torch.Tensor
    ) -> torch.Tensor:
        out = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=keep)
        logits: torch.Tensor = out.logits
        return logits

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


def predicting(labels: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: the positions whose next-token prediction is scored (``labels[:, t+1]``)."""
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != -100
    return keep


def score_predictions(
    logits: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor
) -> tuple[list[bool], list[float]]:
    """Per row: is the argmax right at every scored position, and the summed NLL there.

    ``logits`` (N, V) are the predictions at the N positions where ``keep`` is set, in row
    order (``logits_full[keep]``)."""
    keep = keep.to(logits.device)
    targets = labels.to(logits.device)[:, 1:][keep[:, :-1]]
    rows = keep.nonzero()[:, 0]
    nll = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")
    wrong = (logits.argmax(-1) != targets).float()
    batch = labels.shape[0]
    wrong_rows = torch.zeros(batch, device=logits.device).index_add_(0, rows, wrong)
    nll_rows = torch.zeros(batch, device=logits.device).index_add_(0, rows, nll)
    return (wrong_rows == 0).tolist(), nll_rows.tolist()


def score_batch(logits: torch.Tensor, labels: torch.Tensor) -> tuple[list[bool], list[float]]:
    """:func:`score_predictions` from the logits of every position, (B, T, V)."""
    keep = predicting(labels).to(logits.device)
    return score_predictions(logits[keep], labels, keep)


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
            keep = predicting(enc.labels).to(device)
            logits = forward(enc.input_ids.to(device), enc.attention_mask.to(device), keep)
            correct, nll = score_predictions(logits, enc.labels, keep)
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
    consecutive slices of a per-epoch permutation seeded by (seed, task, epoch); the loss is
    the mean cross-entropy over the answer tokens and eos of the batch.
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
        keep = predicting(enc.labels).to(device)
        logits = model_forward(model)(
            enc.input_ids.to(device), enc.attention_mask.to(device), keep
        )  # the LM head only where the loss looks: the answer tokens and eos
        targets = enc.labels.to(device)[:, 1:][keep[:, :-1]]
        loss = torch.nn.functional.cross_entropy(logits.float(), targets)
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
