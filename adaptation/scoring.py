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
* prompt sharing (``share_prompt``, the default): the choices of an item share its prompt's
  key/value cache. One pass over the left-padded prompts gives ``past_key_values`` and
  ``log p(c_1 | prompt)`` at the last position; a second pass feeds ``c_1 … c_{n−1}`` of each
  choice (right padded) against the prompt's cache rows, at positions ``len(prompt) + t``,
  for ``log p(c_{t+1} | prompt, c_≤t)``. The same token ids as the plain path, the same
  log-likelihoods up to float rounding; the prompt is run once instead of once per choice.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
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
    device: torch.device = next(model.parameters()).device
    return device


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
    share_prompt: bool = True  # one prompt pass per item, its cache shared by the choices

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_format": self.prompt_format, "language": self.language,
                "batch_size": self.batch_size, "max_length": self.max_length,
                "share_prompt": self.share_prompt}  # fmt: skip


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


def _left_padded(sequences: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) of ``sequences`` padded on the left to the longest."""
    width = max(len(s) for s in sequences)
    ids = torch.zeros((len(sequences), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, seq in enumerate(sequences):
        ids[b, width - len(seq) :] = torch.tensor(seq)
        mask[b, width - len(seq) :] = 1
    return ids, mask


def _forward_kept(model: Any, keep: int, **kwargs: Any) -> Any:
    """``model(**kwargs)`` with the logits of the last ``keep`` positions only, where the
    model takes ``logits_to_keep``."""
    try:
        return model(**kwargs, logits_to_keep=keep)
    except TypeError:  # a model without logits_to_keep
        return model(**kwargs)


def _forward_last(model: Any, ids: torch.Tensor, mask: torch.Tensor, keep: int) -> torch.Tensor:
    """Logits of the last ``keep`` positions of a left-padded batch; positions count from
    each row's first real token, so padding changes nothing but float rounding."""
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = _forward_kept(model, keep, input_ids=ids, attention_mask=mask, position_ids=positions)
    return out.logits[:, -keep:].float()  # type: ignore[no-any-return]


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
    keep = max(len(r.ids) - p for r in batch for _, read in r.reads for p, _ in read)
    ids, mask = _left_padded([r.ids for r in batch])
    with torch.inference_mode():
        logp = torch.log_softmax(
            _forward_last(model, ids.to(device), mask.to(device), keep), dim=-1
        ).cpu()
    return logp, keep


def _padded_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices longest first, up to ``batch_size`` to a batch and none padded by more than
    :data:`MAX_PADDING` of its batch's width (the first, longest, sets it)."""
    batch: list[int] = []
    for k in sorted(range(len(lengths)), key=lambda k: (-lengths[k], k)):
        if batch and (
            len(batch) == batch_size or lengths[k] < (1 - MAX_PADDING) * lengths[batch[0]]
        ):
            yield batch
            batch = []
        batch.append(k)
    if batch:
        yield batch


def _plain_loglikelihoods(
    model: Any, pairs: Sequence[tuple[list[int], list[int]]], batch_size: int, max_length: int
) -> list[float]:
    """Each pair's whole sequence through the model (the one-token continuations of a prompt
    read from one sequence)."""
    rows = _rows(pairs, max_length)
    out = [0.0] * len(pairs)
    for batch in _padded_batches([len(r.ids) for r in rows], batch_size):
        _score_rows(model, [rows[k] for k in batch], out)
    return out


@dataclass
class _Prompt:
    """A prompt's ids and the (request index, continuation ids) scored against its cache."""

    ids: list[int]
    continuations: list[tuple[int, list[int]]] = field(default_factory=list)


class _NotShareable(Exception):
    """The model's cache cannot be split into rows (not a cache of dynamic layers)."""


def _shared_prompts(
    pairs: Sequence[tuple[list[int], list[int]]], max_length: int
) -> tuple[list[_Prompt], list[int]]:
    """The prompts worth sharing (two or more continuations, one of several tokens at least,
    none cut by ``max_length``) and the indices of the other pairs, left to the plain path
    (a prompt with one continuation, or only one-token ones, takes one pass there too)."""
    by_ctx: dict[tuple[int, ...], _Prompt] = {}
    for index, (ctx, cont) in enumerate(pairs):
        if tuple(ctx) not in by_ctx:
            by_ctx[tuple(ctx)] = _Prompt(list(ctx))
        by_ctx[tuple(ctx)].continuations.append((index, list(cont)))
    shared: list[_Prompt] = []
    plain: list[int] = []
    for prompt in by_ctx.values():
        conts = prompt.continuations
        fits = all(len(prompt.ids) + len(c) <= max_length for _, c in conts)
        if fits and len(conts) >= 2 and any(len(c) > 1 for _, c in conts):
            shared.append(prompt)
        else:
            plain.extend(index for index, _ in conts)
    return shared, sorted(plain)


def _check_shareable(cache: Any) -> None:
    """Raise :class:`_NotShareable` unless ``cache`` is a dynamic cache on the device whose
    layers are plain or sliding-window key/value tensors (what :func:`_cache_rows` copies)."""
    from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

    kinds = (DynamicLayer, DynamicSlidingWindowLayer)
    if (
        not isinstance(cache, DynamicCache)
        or getattr(cache, "offloading", False)
        or not all(type(layer) in kinds for layer in cache.layers)
    ):
        raise _NotShareable(type(cache).__name__)


def _cache_rows(cache: Any, rows: torch.Tensor) -> Any:
    """A new cache holding rows ``rows`` of ``cache`` (repeats allowed); ``cache`` itself is
    left as it is, so each continuation pass starts from the prompts' states."""
    part = copy.copy(cache)
    part.layers = [copy.copy(layer) for layer in cache.layers]
    part.batch_select_indices(rows)  # each layer's tensors replaced by an indexed copy
    return part


def _forward_continuations(
    model: Any,
    cache: tuple[str, Any],
    mask: torch.Tensor,
    lengths: list[int],
    rows: list[tuple[int, int, list[int]]],
) -> torch.Tensor:
    """``log p(cont_{t+1} | prompt, cont_≤t)`` for t = 1 … n−1 of each (prompt row, request,
    continuation) row, fed right padded after its prompt's cache row at positions
    ``len(prompt) + t − 1``; shape (rows, longest − 1), zeros past a row's end. ``cache`` is
    the keyword the model takes it by and the prompts' cache."""
    device = _device(model)
    width = max(len(cont) for _, _, cont in rows) - 1
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    targets = torch.zeros_like(ids)
    fed = torch.zeros_like(ids)
    for r, (_, _, cont) in enumerate(rows):
        ids[r, : len(cont) - 1] = torch.tensor(cont[:-1])
        targets[r, : len(cont) - 1] = torch.tensor(cont[1:])
        fed[r, : len(cont) - 1] = 1
    select = torch.tensor([b for b, _, _ in rows])
    positions = torch.tensor([lengths[b] for b, _, _ in rows]).unsqueeze(1) + torch.arange(width)
    with torch.inference_mode():
        logits = model(
            input_ids=ids.to(device),
            attention_mask=torch.cat([mask[select], fed], dim=1).to(device),
            position_ids=positions.to(device),
            use_cache=True,
            **{cache[0]: _cache_rows(cache[1], select.to(device))},
        ).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        picked = logp.gather(-1, targets.to(device).unsqueeze(-1)).squeeze(-1).cpu()
    return picked * fed


def _score_prompts(
    model: Any, prompts: list[_Prompt], rows_per_pass: int
) -> list[tuple[int, float]]:
    """(request index, log-likelihood) of every continuation of ``prompts``: one pass over the
    prompts, then passes of up to ``rows_per_pass`` continuations against their caches
    (batched as the prompts are: longest first, little padding)."""
    device = _device(model)
    ids, mask = _left_padded([p.ids for p in prompts])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        out = _forward_kept(
            model, 1, input_ids=ids.to(device), attention_mask=mask.to(device),
            position_ids=positions.to(device), use_cache=True,
        )  # fmt: skip
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1).cpu()
    # transformers renamed ``past_key_values`` to ``cache`` (5.2x): feed it back by its name
    keyword = "cache" if getattr(out, "cache", None) is not None else "past_key_values"
    cache = getattr(out, keyword, None)
    if cache is None:
        raise _NotShareable("the model returned no cache")
    _check_shareable(cache)
    lengths = [len(p.ids) for p in prompts]
    values: dict[int, torch.Tensor] = {}
    rows: list[tuple[int, int, list[int]]] = []
    for b, prompt in enumerate(prompts):
        for index, cont in prompt.continuations:
            values[index] = first[b, cont[0]].double()
            if len(cont) > 1:
                rows.append((b, index, cont))
    run = partial(_forward_continuations, model, (keyword, cache), mask, lengths)
    # longest first, as the prompts: little right padding in a continuation pass
    for chunk in _padded_batches([len(cont) - 1 for _, _, cont in rows], rows_per_pass):
        for part, picked in split_on_oom(run, [rows[k] for k in chunk]):
            for r, (_, index, _) in enumerate(part):
                values[index] += picked[r].double().sum()
    return [(index, float(value)) for index, value in values.items()]


def loglikelihoods(
    model: Any,
    pairs: Sequence[tuple[list[int], list[int]]],
    *,
    batch_size: int = 16,
    max_length: int = 2048,
    share_prompt: bool = True,
) -> list[float]:
    """``Σ_t log p(cont_t | ctx, cont_<t)`` in nats for each (ctx ids, cont ids) pair; rows
    longest first, up to ``batch_size`` to a forward pass and none padded by more than
    :data:`MAX_PADDING` of its width (a batch is halved where the device runs out of
    memory). With ``share_prompt``, a context with two or more continuations, one of several
    tokens at least, runs once and its continuations read its cache (see the module docstring):
    ``batch_size`` prompts to a prompt pass, ``batch_size`` continuations to a pass after it;
    the other pairs, or all of them for a model whose cache cannot be split into rows, take
    the plain path."""
    out = [0.0] * len(pairs)
    plain = list(range(len(pairs)))
    if share_prompt:
        prompts, rest = _shared_prompts(pairs, max_length)
        try:
            for batch in _padded_batches([len(p.ids) for p in prompts], batch_size):
                run = partial(_score_prompts, model, rows_per_pass=batch_size)
                for _, scored in split_on_oom(run, [prompts[k] for k in batch]):
                    for index, value in scored:
                        out[index] = value
            plain = rest
        except _NotShareable:
            pass
    values = _plain_loglikelihoods(model, [pairs[k] for k in plain], batch_size, max_length)
    for index, value in zip(plain, values, strict=True):
        out[index] = value
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
        model,
        pairs,
        batch_size=config.batch_size,
        max_length=config.max_length,
        share_prompt=config.share_prompt,
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
