"""The output head of a vocabulary-swapped model: tied to the new embeddings, or untied with a
unigram frequency prior, chosen by bits per character on held-out text.

A mean-initialised row knows what its token *means* but not how *often* it comes: the old
head's frequency knowledge is spread over pieces that the new token no longer uses, so the
swapped model predicts rare and common tokens alike (bits per character rise after a swap).
The frequency head puts that knowledge back without training:

    W_t = s · E_t + (log p_t − mean_u log p_u) · h̄ / ‖h̄‖²

with ``E_t`` the token's mean-initialised row, ``s`` a scale (0.25 by default), ``p_t`` the
add-one smoothed unigram frequency of token ``t`` in the training text and ``h̄`` the mean
final hidden state (after the last norm) on that text. For a hidden state near ``h̄`` the
logit of ``t`` gains ``log p_t`` up to a constant: a unigram model as the prior, the
embedding term as the context. Special tokens get no prior (their centred log frequency is 0).

Bits per character alone can pick a head that generates nothing: the prior lifts the most
frequent tokens (a comma) for every context, and greedy decoding then writes ",,,,". ``auto``
therefore also continues a few held-out prompts greedily with each head and keeps the
frequency head only when its bits per character are lower *and* its continuations repeat
themselves no more than the tied head's (mean distinct 3-gram share, within
:data:`LOOP_MARGIN`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from adaptation.registry import gettext_noop

HEAD_CHOICES: tuple[tuple[str, str], ...] = (
    ("auto", gettext_noop("the better of the two on held-out text")),
    ("tied", gettext_noop("tied to the new embeddings")),
    ("frequency", gettext_noop("untied, with a unigram frequency prior")),
)
DEFAULT_SCALE = 0.25
LOOP_PROMPTS = 4  # held-out lines whose first words are continued greedily
LOOP_TOKENS = 24  # new tokens per continuation
LOOP_MARGIN = 0.1  # the frequency head may repeat this much more than the tied head
HIDDEN_LINES = 256  # lines whose final hidden states give h̄ (counts use every line given)


def unigram_log_probs(tokenizer: Any, texts: Sequence[str], vocab_size: int) -> torch.Tensor:
    """``log p_t`` of every id: add-one smoothed counts of the ids ``texts`` encode to."""
    counts = torch.ones(vocab_size, dtype=torch.float64)
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        if ids:
            counts += torch.bincount(torch.tensor(ids), minlength=vocab_size)[:vocab_size]
    return (counts / counts.sum()).log().float()


@torch.no_grad()
def mean_final_hidden(
    model: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int = 16, max_length: int = 256
) -> torch.Tensor:
    """``h̄``: the mean of the final hidden states (after the last norm) over every token."""
    body = model.get_decoder()
    device = next(model.parameters()).device
    total: torch.Tensor | None = None
    count = 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for pos in range(0, len(texts), batch_size):
        encoded = [
            ids[:max_length]
            for ids in tokenizer(list(texts[pos : pos + batch_size]), add_special_tokens=False)[
                "input_ids"
            ]
            if ids
        ]
        if not encoded:
            continue
        width = max(map(len, encoded))
        ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, seq in enumerate(encoded):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        states = body(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        kept = states[mask.to(device).bool()].float()
        total = kept.sum(dim=0) if total is None else total + kept.sum(dim=0)
        count += kept.shape[0]
    if total is None:
        raise ValueError("no text to average the hidden states over")
    return (total / count).cpu()


def frequency_head_rows(
    rows: torch.Tensor,
    log_probs: torch.Tensor,
    hidden: torch.Tensor,
    *,
    scale: float = DEFAULT_SCALE,
    neutral_ids: Sequence[int] = (),
) -> torch.Tensor:
    """``W_t = s · rows_t + (log p_t − mean log p) · h̄ / ‖h̄‖²`` (module docstring)."""
    centred = log_probs.float() - log_probs.float().mean()
    if neutral_ids:
        centred[torch.tensor(list(neutral_ids))] = 0.0
    direction = hidden.float() / hidden.float().dot(hidden.float()).clamp_min(1e-12)
    return scale * rows.float() + centred[:, None] * direction[None, :]


def set_untied_head(model: Any, rows: torch.Tensor) -> None:
    """Give ``model`` an output head of its own holding ``rows`` (the input embeddings stay)."""
    embeddings = model.get_input_embeddings().weight
    head = torch.nn.Linear(rows.shape[1], rows.shape[0], bias=False)
    head.weight = torch.nn.Parameter(rows.to(embeddings.dtype).to(embeddings.device).clone())
    model.set_output_embeddings(head)
    _set_tied(model, False)


def _set_tied(model: Any, tied: bool) -> None:
    """The config's ``tie_word_embeddings`` (and a nested text config's, when there is one)."""
    model.config.tie_word_embeddings = tied
    text_config = getattr(model.config, "text_config", None)
    if text_config is not None and hasattr(text_config, "tie_word_embeddings"):
        text_config.tie_word_embeddings = tied


@dataclass(frozen=True)
class HeadChoice:
    chosen: str  # "tied" or "frequency"
    bpc: dict[str, float]  # bits per character on the held-out text of each head tried
    scale: float
    # mean distinct 3-gram share of each head's greedy continuations (auto only)
    distinct_3gram: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def loop_prompts(texts: Sequence[str], count: int = LOOP_PROMPTS) -> list[str]:
    """The first four words of the first ``count`` texts that have at least eight."""
    prompts = [" ".join(t.split()[:4]) for t in texts if len(t.split()) >= 8]
    return prompts[:count]


@torch.no_grad()
def greedy_distinct_share(
    model: Any, tokenizer: Any, prompts: Sequence[str], new_tokens: int = LOOP_TOKENS
) -> float:
    """Mean distinct 3-gram share (:mod:`adaptation.repetition`) of the greedy continuations
    of ``prompts``; 1.0 when there is nothing to continue."""
    from adaptation.repetition import mean_distinct_share

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    texts = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"].to(device)
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=False, pad_token_id=pad)  # fmt: skip
        texts.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    share = mean_distinct_share(texts)
    return 1.0 if share is None else share


def choose_head(
    model: Any,
    tokenizer: Any,
    train_texts: Sequence[str],
    heldout_texts: Sequence[str],
    mode: str = "auto",
    *,
    scale: float = DEFAULT_SCALE,
) -> HeadChoice:
    """Apply the head ``mode`` asks for to ``model`` (in place); ``auto`` measures bits per
    character of both heads on ``heldout_texts`` and keeps the lower."""
    from adaptation.scoring import bits_per_character

    if mode not in dict(HEAD_CHOICES):
        raise ValueError(f"head must be one of {[c for c, _ in HEAD_CHOICES]}")

    def bpc() -> float:
        result = bits_per_character(model, tokenizer, list(heldout_texts))
        return result.bits / max(result.chars, 1)

    measured: dict[str, float] = {}
    loops: dict[str, float] = {}
    prompts = loop_prompts(heldout_texts)
    if mode == "tied":
        return HeadChoice("tied", measured, scale)
    if mode == "auto":
        measured["tied"] = bpc()
        loops["tied"] = greedy_distinct_share(model, tokenizer, prompts)
    before = model.get_output_embeddings()
    was_tied = bool(getattr(model.config, "tie_word_embeddings", False))
    vocab = model.get_input_embeddings().weight.shape[0]
    specials = sorted(set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder))
    rows = frequency_head_rows(
        before.weight.detach(),
        unigram_log_probs(tokenizer, train_texts, vocab),
        mean_final_hidden(model, tokenizer, list(train_texts[:HIDDEN_LINES])),
        scale=scale,
        neutral_ids=[i for i in specials if i < vocab],
    )
    set_untied_head(model, rows)
    if mode == "frequency":
        return HeadChoice("frequency", measured, scale)
    measured["frequency"] = bpc()
    loops["frequency"] = greedy_distinct_share(model, tokenizer, prompts)
    fewer_bits = math.isfinite(measured["frequency"]) and measured["frequency"] < measured["tied"]
    no_more_loops = loops["frequency"] >= loops["tied"] - LOOP_MARGIN
    if not (fewer_bits and no_more_loops):
        model.set_output_embeddings(before)  # the tied (or the model's own) head wins
        _set_tied(model, was_tied)
        if was_tied:
            model.tie_weights()
        return HeadChoice("tied", measured, scale, loops)
    return HeadChoice("frequency", measured, scale, loops)


def choose_head_folder(
    folder: Path,
    train_texts: Sequence[str],
    heldout_texts: Sequence[str],
    mode: str = "auto",
    *,
    scale: float = DEFAULT_SCALE,
) -> HeadChoice:
    """:func:`choose_head` on a saved model folder, saved again when the head changed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    choice = choose_head(model, tokenizer, train_texts, heldout_texts, mode, scale=scale)
    if choice.chosen == "frequency":
        model.save_pretrained(folder)
    return choice
