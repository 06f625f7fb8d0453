"""Tokenizer-independent scores of a causal LM.

* bits per character: ``bpc = Σ_tokens −log2 p(token | prefix) / Σ_texts len(text)``.
  Every token of a text is predicted (the context starts with the bos token, or eos when
  there is no bos), so two models with different tokenizers pay for the same characters.
  Texts longer than ``max_length`` tokens are scored in consecutive windows; each window
  after the first is conditioned on the last token of the previous one.
* multiple-choice log-likelihoods (:func:`score_choices`, after lm-evaluation-harness's
  ``loglikelihood``): for each choice ``c`` of an item, ``ll(c) = Σ_t log p(c_t | prompt,
  c_<t)`` over the tokens of the continuation, where the pair is encoded as the harness's
  ``_encode_pair`` does (trailing spaces of the prompt move to the continuation; the
  continuation's tokens are those of ``encode(prompt + continuation)`` after the first
  ``len(encode(prompt))``). ``acc`` takes ``argmax_c ll(c)``, ``acc_norm`` takes
  ``argmax_c ll(c) / chars(c)`` (per character, not per token, so models with different
  tokenizers compare fairly). Two prompt formats: *cloze* (the continuation is the choice's
  text) and *lettered* (the choices are listed as A., B., ... and the continuation is the
  letter). Requests are batched (left padding, explicit positions, logits kept only where a
  continuation is read) and results do not depend on the batch size beyond float rounding;
  choices that share their prompt and are one token long are read from one forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import torch

from adaptation.modelio import split_on_oom


@dataclass(frozen=True)
class ScoringConfig:
    max_length: int = 512
    batch_size: int = 8


@dataclass(frozen=True)
class BpcResult:
    bits: float
    chars: int
    tokens: int

    @property
    def bpc(self) -> float:
        return self.bits / self.chars if self.chars else float("nan")


@dataclass(frozen=True)
class ChoiceItem:
    question: str
    options: tuple[str, ...]
    answer: int  # index of the correct option


def start_token_id(tokenizer: Any) -> int:
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else None
    start = start if start is not None else tokenizer.eos_token_id
    if start is None:
        raise ValueError("the tokenizer has neither a bos nor an eos token")
    return int(start)


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def _nll_bits(model: Any, sequences: list[list[int]], targets_from: list[int]) -> list[float]:
    """For each sequence, Σ −log2 p(seq[j] | seq[:j]) over j >= targets_from[i] (batched)."""
    device = _device(model)
    width = max(len(s) for s in sequences)
    ids = torch.zeros((len(sequences), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    with torch.inference_mode():
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    picked = logp.gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1).cpu()
    out = []
    for row, seq in enumerate(sequences):
        start = max(targets_from[row], 1)
        out.append(float(-picked[row, start - 1 : len(seq) - 1].sum()) / math.log(2))
    return out


def bits_per_text(
    model: Any, tokenizer: Any, texts: Sequence[str], config: ScoringConfig = ScoringConfig()
) -> list[BpcResult]:
    """Bits, characters and tokens of each text, in order (see module docstring); the
    windows of every text are batched together."""
    start = start_token_id(tokenizer)
    windows: list[tuple[int, list[int]]] = []  # (text index, window)
    out = [BpcResult(bits=0.0, chars=0, tokens=0) for _ in texts]
    for index, text in enumerate(texts):
        if not text:
            continue
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        out[index] = BpcResult(bits=0.0, chars=len(text), tokens=len(ids))
        context = start
        step = config.max_length - 1
        for pos in range(0, len(ids), step):
            chunk = ids[pos : pos + step]
            windows.append((index, [context, *chunk]))
            context = chunk[-1]
    windows.sort(key=lambda w: len(w[1]))
    bits = [0.0] * len(texts)
    for pos in range(0, len(windows), config.batch_size):
        batch = windows[pos : pos + config.batch_size]
        scored = _nll_bits(model, [w for _, w in batch], [1] * len(batch))
        for (index, _), value in zip(batch, scored, strict=True):
            bits[index] += value
    return [replace(r, bits=b) for r, b in zip(out, bits, strict=True)]


def bits_per_character(
    model: Any, tokenizer: Any, texts: Sequence[str], config: ScoringConfig = ScoringConfig()
) -> BpcResult:
    """Bits per character of ``model`` on ``texts`` together (see module docstring)."""
    each = bits_per_text(model, tokenizer, texts, config)
    return BpcResult(
        bits=sum(r.bits for r in each),
        chars=sum(r.chars for r in each),
        tokens=sum(r.tokens for r in each),
    )


# ---------------------------------------------------------------- multiple-choice scoring

PromptFormat = Literal["cloze", "lettered"]
PROMPT_FORMATS: tuple[PromptFormat, ...] = ("cloze", "lettered")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: (context, question, answer) labels of the prompt, by the benchmark's language.
LABELS = {"ru": ("Текст", "Вопрос", "Ответ"), "en": ("Text", "Question", "Answer")}


class ChoiceLike(Protocol):
    """What the scorer reads of an item (``adaptation.benchmarks.MCItem`` has it)."""

    @property
    def question(self) -> str: ...
    @property
    def choices(self) -> tuple[str, ...]: ...
    @property
    def answer(self) -> int: ...
    @property
    def context(self) -> str: ...


@dataclass(frozen=True)
class ChoiceConfig:
    prompt_format: PromptFormat = "cloze"
    language: str = "ru"  # the labels of the prompt (LABELS); unknown languages get English
    batch_size: int = 16  # sequences per forward pass
    max_length: int = 2048  # longer sequences lose tokens from the left of the prompt

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_format": self.prompt_format, "language": self.language,
                "batch_size": self.batch_size, "max_length": self.max_length}  # fmt: skip


def choice_requests(
    item: ChoiceLike, config: ChoiceConfig = ChoiceConfig()
) -> tuple[str, list[str]]:
    """The prompt of an item and the continuation scored for each choice.

    cloze:    ``[Текст: …\n]Вопрос: …\nОтвет:`` + ``" <choice>"``
    lettered: the same with ``A. <choice 1>\nB. …`` listed before ``Ответ:``, + ``" A"``, …
    """
    text, question, answer = LABELS.get(config.language, LABELS["en"])
    prompt = f"{text}: {item.context}\n" if item.context else ""
    prompt += f"{question}: {item.question}\n"
    if config.prompt_format == "lettered":
        if len(item.choices) > len(LETTERS):
            raise ValueError(f"the lettered format names at most {len(LETTERS)} choices")
        prompt += "".join(f"{LETTERS[k]}. {c}\n" for k, c in enumerate(item.choices))
        return f"{prompt}{answer}:", [f" {LETTERS[k]}" for k in range(len(item.choices))]
    return f"{prompt}{answer}:", [f" {c}" for c in item.choices]


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids with the start token, continuation ids), as lm-evaluation-harness's
    ``_encode_pair``: trailing spaces of the context move to the continuation, and the
    continuation is what ``encode(context + continuation)`` adds after ``len(encode(context))``
    tokens. Where that split does not reproduce the context's own tokens (a merge across the
    boundary), or leaves nothing, the continuation is encoded on its own."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        continuation = context[-spaces:] + continuation
        context = context[:-spaces]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    cont = whole[len(ctx) :]
    if whole[: len(ctx)] != ctx or not cont:
        cont = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    if not cont:
        raise ValueError(f"the continuation {continuation!r} encodes to no tokens")
    return [start_token_id(tokenizer), *ctx], list(cont)


@dataclass
class _Row:
    """One forward pass's sequence and what is read from it: for each request, the
    positions whose next-token distribution scores each continuation token."""

    ids: list[int]
    reads: list[tuple[int, list[tuple[int, int]]]] = field(default_factory=list)


def _rows(pairs: Sequence[tuple[list[int], list[int]]], max_length: int) -> list[_Row]:
    rows: list[_Row] = []
    shared: dict[tuple[int, ...], _Row] = {}
    for index, (ctx, cont) in enumerate(pairs):
        if len(cont) == 1:  # a one-token continuation is read at the context's last position
            row = shared.get(tuple(ctx))
            if row is None:
                row = shared[tuple(ctx)] = _Row(list(ctx))
                rows.append(row)
            row.reads.append((index, [(len(ctx) - 1, cont[0])]))
            continue
        seq = [*ctx, *cont]
        rows.append(_Row(seq, [(index, [(len(ctx) - 1 + k, t) for k, t in enumerate(cont)])]))
    for row in rows:
        cut = len(row.ids) - max_length
        if cut > 0:
            row.ids = row.ids[cut:]
            row.reads = [(i, [(p - cut, t) for p, t in read]) for i, read in row.reads]
            if any(p < 0 for _, read in row.reads for p, _ in read):
                raise ValueError(f"a continuation is longer than max_length={max_length}")
    return rows


def _forward_last(model: Any, ids: torch.Tensor, mask: torch.Tensor, keep: int) -> torch.Tensor:
    """Logits of the last ``keep`` positions of a left-padded batch; positions count from
    each row's first real token, so padding changes nothing but float rounding."""
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    kwargs = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
    try:
        logits = model(**kwargs, logits_to_keep=keep).logits
    except TypeError:  # a model without logits_to_keep
        logits = model(**kwargs).logits
    return logits[:, -keep:].float()


#: The largest share of a row that may be padding: longer rows are not batched with much
#: shorter ones (attention over padding costs as much as over tokens).
MAX_PADDING = 0.25


def _score_rows(model: Any, batch: list[_Row], out: list[float]) -> None:
    """Forward passes over ``batch`` (in halves where the device runs out of memory), each
    read token's log-probability summed into ``out``."""
    for part, (logp, keep) in split_on_oom(lambda rows: _forward_rows(model, rows), batch):
        for b, row in enumerate(part):
            for index, read in row.reads:
                at = [keep - (len(row.ids) - p) for p, _ in read]
                tokens = [t for _, t in read]
                out[index] = float(logp[b, at, tokens].double().sum())


def _forward_rows(model: Any, batch: list[_Row]) -> tuple[torch.Tensor, int]:
    """Left-padded rows through the model; log-probabilities of the last ``keep`` positions."""
    device = _device(model)
    width = max(len(r.ids) for r in batch)
    keep = max(len(r.ids) - p for r in batch for _, read in r.reads for p, _ in read)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, row in enumerate(batch):
        ids[b, width - len(row.ids) :] = torch.tensor(row.ids)
        mask[b, width - len(row.ids) :] = 1
    with torch.inference_mode():
        logp = torch.log_softmax(
            _forward_last(model, ids.to(device), mask.to(device), keep), dim=-1
        ).cpu()
    return logp, keep


def loglikelihoods(
    model: Any,
    pairs: Sequence[tuple[list[int], list[int]]],
    *,
    batch_size: int = 16,
    max_length: int = 2048,
) -> list[float]:
    """``Σ_t log p(cont_t | ctx, cont_<t)`` in nats for each (ctx ids, cont ids) pair; rows
    longest first, up to ``batch_size`` to a forward pass and none padded by more than
    :data:`MAX_PADDING` of its width (a batch is halved where the device runs out of
    memory)."""
    rows = _rows(pairs, max_length)
    order = sorted(range(len(rows)), key=lambda k: (-len(rows[k].ids), k))
    out = [0.0] * len(pairs)
    batch: list[_Row] = []
    for k in order:
        row = rows[k]
        # a new batch when full, or when this row would be more than MAX_PADDING padding
        # (rows come longest first: the batch's first row sets its width)
        if batch and (
            len(batch) == batch_size or len(row.ids) < (1 - MAX_PADDING) * len(batch[0].ids)
        ):
            _score_rows(model, batch, out)
            batch = []
        batch.append(row)
    if batch:
        _score_rows(model, batch, out)
    return out


@dataclass(frozen=True)
class ItemScore:
    """The log-likelihood (nats) of each choice of one item, with the tokens and the
    characters of each scored continuation; the predictions follow (first maximum wins)."""

    logprobs: tuple[float, ...]
    tokens: tuple[int, ...]
    chars: tuple[int, ...]
    answer: int

    @property
    def predicted(self) -> int:
        return max(range(len(self.logprobs)), key=self.logprobs.__getitem__)

    @property
    def predicted_norm(self) -> int:
        per_char = [lp / max(c, 1) for lp, c in zip(self.logprobs, self.chars, strict=True)]
        return max(range(len(per_char)), key=per_char.__getitem__)

    @property
    def correct(self) -> bool:
        return self.predicted == self.answer

    @property
    def correct_norm(self) -> bool:
        return self.predicted_norm == self.answer

    def to_dict(self) -> dict[str, Any]:
        return {"logprobs": list(self.logprobs), "tokens": list(self.tokens),
                "chars": list(self.chars), "predicted": self.predicted,
                "predicted_norm": self.predicted_norm}  # fmt: skip


def score_choices(
    model: Any,
    tokenizer: Any,
    items: Sequence[ChoiceLike],
    config: ChoiceConfig = ChoiceConfig(),
) -> list[ItemScore]:
    """Every choice of every item scored in batches (see the module docstring)."""
    pairs: list[tuple[list[int], list[int]]] = []
    spans: list[tuple[int, int, list[int]]] = []
    for item in items:
        prompt, continuations = choice_requests(item, config)
        first = len(pairs)
        pairs.extend(encode_pair(tokenizer, prompt, c) for c in continuations)
        chars = [len(c.strip()) for c in continuations]
        spans.append((first, len(pairs), chars))
    values = loglikelihoods(
        model, pairs, batch_size=config.batch_size, max_length=config.max_length
    )
    return [
        ItemScore(
            logprobs=tuple(values[a:b]),
            tokens=tuple(len(pairs[k][1]) for k in range(a, b)),
            chars=tuple(chars),
            answer=item.answer,
        )
        for item, (a, b, chars) in zip(items, spans, strict=True)
    ]


def iter_choice_scores(
    model: Any,
    tokenizer: Any,
    items: Sequence[ChoiceLike],
    config: ChoiceConfig = ChoiceConfig(),
    *,
    chunk: int = 64,
    skip: frozenset[int] = frozenset(),
) -> Iterator[list[tuple[int, ItemScore]]]:
    """:func:`score_choices` in chunks of ``chunk`` items (indices in ``skip`` left out), so
    a caller can store each chunk (a job resumes where it stopped)."""
    todo = [k for k in range(len(items)) if k not in skip]
    for pos in range(0, len(todo), chunk):
        part = todo[pos : pos + chunk]
        scores = score_choices(model, tokenizer, [items[k] for k in part], config)
        yield list(zip(part, scores, strict=True))


@dataclass(frozen=True)
class ChoiceMetrics:
    n: int
    acc: float | None
    acc_norm: float | None
    categories: dict[str, dict[str, Any]]  # category -> {n, acc, acc_norm}

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "acc": self.acc, "acc_norm": self.acc_norm,
                "categories": self.categories}  # fmt: skip


def choice_metrics(categories: Sequence[str], scores: Sequence[ItemScore]) -> ChoiceMetrics:
    """acc and acc_norm overall and per category (categories sorted by name)."""

    def part(rows: Sequence[ItemScore]) -> dict[str, Any]:
        n = len(rows)
        return {
            "n": n,
            "acc": sum(r.correct for r in rows) / n if n else None,
            "acc_norm": sum(r.correct_norm for r in rows) / n if n else None,
        }

    by: dict[str, list[ItemScore]] = {}
    for category, score in zip(categories, scores, strict=True):
        by.setdefault(category, []).append(score)
    whole = part(scores)
    return ChoiceMetrics(
        n=whole["n"], acc=whole["acc"], acc_norm=whole["acc_norm"],
        categories={c: part(by[c]) for c in sorted(by)},
    )  # fmt: skip


def option_logprob(
    model: Any, tokenizer: Any, question: str, option: str, *, normalize: str = "sum"
) -> float:
    """``log p(option | question)`` in nats (the continuation ``option`` after ``question``,
    split as :func:`encode_pair` does); per character of ``option`` with ``per_char``."""
    value = loglikelihoods(model, [encode_pair(tokenizer, question, option)], batch_size=1)[0]
    return value / max(len(option), 1) if normalize == "per_char" else value


def choice_accuracy(
    model: Any,
    tokenizer: Any,
    items: Sequence[ChoiceItem],
    *,
    normalize: Literal["sum", "per_char"] = "sum",
) -> float:
    """Share of items whose highest-likelihood option is the correct one (each option the
    continuation of the bare question, batched)."""
    if not items:
        return float("nan")
    pairs = [encode_pair(tokenizer, i.question, o) for i in items for o in i.options]
    values = iter(loglikelihoods(model, pairs))
    right = 0
    for item in items:
        scores = [next(values) for _ in item.options]
        if normalize == "per_char":
            scores = [s / max(len(o), 1) for s, o in zip(scores, item.options, strict=True)]
        right += int(max(range(len(scores)), key=scores.__getitem__) == item.answer)
    return right / len(items)


def bpc_by_category(
    model: Any,
    tokenizer: Any,
    texts: Mapping[str, Sequence[str]],
    config: ScoringConfig = ScoringConfig(),
    *,
    on_category: Callable[[str], None] | None = None,
) -> dict[str, BpcResult]:
    """:func:`bits_per_character` of each category's texts."""
    out = {}
    for category, part in texts.items():
        if on_category is not None:
            on_category(category)
        out[category] = bits_per_character(model, tokenizer, part, config)
    return out
