"""Tokenizer-independent scores of a causal LM.

* bits per character: ``bpc = Σ_tokens −log2 p(token | prefix) / Σ_texts len(text)``.
  Every token of a text is predicted (the context starts with the bos token, or eos when
  there is no bos), so two models with different tokenizers pay for the same characters.
  Texts longer than ``max_length`` tokens are scored in consecutive windows; each window
  after the first is conditioned on the last token of the previous one.
* multiple-choice accuracy: the option with the highest ``log p(option | question)`` (summed
  over the option's tokens, or divided by its characters with ``normalize='per_char'``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch


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


def bits_per_character(
    model: Any, tokenizer: Any, texts: Sequence[str], config: ScoringConfig = ScoringConfig()
) -> BpcResult:
    """Bits per character of ``model`` on ``texts`` (see module docstring)."""
    start = start_token_id(tokenizer)
    windows: list[list[int]] = []
    chars = tokens = 0
    for text in texts:
        if not text:
            continue
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        chars += len(text)
        tokens += len(ids)
        context = start
        step = config.max_length - 1
        for pos in range(0, len(ids), step):
            chunk = ids[pos : pos + step]
            windows.append([context, *chunk])
            context = chunk[-1]
    windows.sort(key=len)
    bits = 0.0
    for pos in range(0, len(windows), config.batch_size):
        batch = windows[pos : pos + config.batch_size]
        bits += sum(_nll_bits(model, batch, [1] * len(batch)))
    return BpcResult(bits=bits, chars=chars, tokens=tokens)


def option_logprob(
    model: Any, tokenizer: Any, question: str, option: str, *, normalize: str = "sum"
) -> float:
    """``log p(option | question)`` in nats, over the tokens where the encodings differ."""
    start = start_token_id(tokenizer)
    context = [start, *tokenizer(question, add_special_tokens=False)["input_ids"]]
    full = [start, *tokenizer(question + option, add_special_tokens=False)["input_ids"]]
    shared = 0
    while shared < min(len(context), len(full)) and context[shared] == full[shared]:
        shared += 1
    bits = _nll_bits(model, [full], [shared])[0]
    value = -bits * math.log(2)
    return value / max(len(option), 1) if normalize == "per_char" else value


def choice_accuracy(
    model: Any,
    tokenizer: Any,
    items: Sequence[ChoiceItem],
    *,
    normalize: Literal["sum", "per_char"] = "sum",
) -> float:
    """Share of items whose highest-likelihood option is the correct one."""
    if not items:
        return float("nan")
    right = 0
    for item in items:
        scores = [
            option_logprob(model, tokenizer, item.question, o, normalize=normalize)
            for o in item.options
        ]
        right += int(max(range(len(scores)), key=scores.__getitem__) == item.answer)
    return right / len(items)
