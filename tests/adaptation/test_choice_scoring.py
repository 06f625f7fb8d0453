"""Multiple-choice scoring: log-likelihood of each choice, acc and acc_norm, both formats,
batched against a hand computation; bits per character by category."""

from __future__ import annotations

import math

import pytest
import torch

from adaptation.benchmarks import MCItem
from adaptation.scoring import (
    ChoiceConfig,
    ItemScore,
    ScoringConfig,
    bits_per_character,
    bpc_by_category,
    choice_metrics,
    choice_requests,
    encode_pair,
    iter_choice_scores,
    loglikelihoods,
    score_choices,
    start_token_id,
)
from tests.adaptation.conftest import tiny_model

ITEMS = [
    MCItem("Столица России?", ("Москва", "Париж", "Рим"), 0, "q1", "geo"),
    MCItem("Сколько будет два плюс два?", ("четыре", "пять", "три с половиной"), 0, "q2", "math"),
    MCItem(
        "О чём текст?",
        ("о погоде", "о городе у реки"),
        1,
        "q3",
        "reading",
        context="Город стоит на берегу широкой реки, и по утрам над водой стоит туман.",
    ),
    MCItem("Which is a colour?", ("green", "seven", "quickly", "under"), 0, "q4", "english"),
]


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_model(len(tokenizer), seed=3)


def by_hand(model, tokenizer, prompt: str, continuation: str) -> float:
    """Σ log p(token | prefix) over the continuation's tokens: one unpadded forward pass of
    the whole sequence, the log-softmax of every position, summed by a plain loop."""
    spaces = len(prompt) - len(prompt.rstrip())
    context, cont_text = (
        prompt[: len(prompt) - spaces],
        prompt[len(prompt) - spaces :] + continuation,
    )
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    whole = tokenizer(context + cont_text, add_special_tokens=False)["input_ids"]
    assert whole[: len(ctx)] == ctx  # no merge across the boundary for these texts
    ids = [start_token_id(tokenizer), *whole]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    total = 0.0
    for position in range(len(ctx) + 1, len(ids)):
        total += float(logp[position - 1, ids[position]])
    return total


@pytest.mark.parametrize("prompt_format", ["cloze", "lettered"])
def test_each_choice_log_likelihood_equals_the_hand_computed_sum(model, tokenizer, prompt_format):
    config = ChoiceConfig(prompt_format=prompt_format, batch_size=5)
    scores = score_choices(model, tokenizer, ITEMS, config)
    for item, score in zip(ITEMS, scores, strict=True):
        prompt, continuations = choice_requests(item, config)
        expected = [by_hand(model, tokenizer, prompt, c) for c in continuations]
        assert score.logprobs == pytest.approx(expected, abs=2e-4)
        assert all(lp < 0 for lp in score.logprobs)
        assert score.answer == item.answer


def test_prompt_formats_read_as_documented():
    item = ITEMS[2]
    prompt, conts = choice_requests(item, ChoiceConfig(prompt_format="cloze"))
    assert prompt == f"Текст: {item.context}\nВопрос: О чём текст?\nОтвет:"
    assert conts == [" о погоде", " о городе у реки"]
    prompt, conts = choice_requests(item, ChoiceConfig(prompt_format="lettered", language="en"))
    assert prompt.endswith("Question: О чём текст?\nA. о погоде\nB. о городе у реки\nAnswer:")
    assert conts == [" A", " B"]


def test_trailing_spaces_of_the_prompt_move_to_the_continuation(tokenizer):
    a = encode_pair(tokenizer, "Ответ: ", "Москва")
    b = encode_pair(tokenizer, "Ответ:", " Москва")
    assert a == b and a[0][0] == start_token_id(tokenizer)
    assert tokenizer.decode(a[1]) == " Москва"


def test_batched_scores_match_one_at_a_time_and_do_not_depend_on_order(model, tokenizer):
    config = ChoiceConfig(batch_size=16)
    batched = score_choices(model, tokenizer, ITEMS, config)
    single = score_choices(model, tokenizer, ITEMS, ChoiceConfig(batch_size=1))
    for a, b in zip(batched, single, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
        assert (a.predicted, a.predicted_norm) == (b.predicted, b.predicted_norm)
    reversed_scores = score_choices(model, tokenizer, ITEMS[::-1], config)[::-1]
    for a, b in zip(batched, reversed_scores, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    assert score_choices(model, tokenizer, ITEMS, config) == batched  # deterministic


def test_lettered_choices_share_one_forward_pass_per_item(model, tokenizer, monkeypatch):
    calls = []
    forward = model.forward

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape)
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counting)
    score_choices(model, tokenizer, ITEMS, ChoiceConfig(prompt_format="lettered", batch_size=1))
    assert len(calls) == len(ITEMS)  # one sequence per item, not one per choice
    calls.clear()
    score_choices(model, tokenizer, ITEMS, ChoiceConfig(prompt_format="cloze", batch_size=1))
    assert len(calls) > len(ITEMS)


def test_acc_norm_divides_by_characters_not_tokens():
    # the long choice has the larger total log-likelihood per character, not in total
    score = ItemScore(logprobs=(-3.0, -8.0), tokens=(1, 4), chars=(2, 20), answer=1)
    assert score.predicted == 0 and score.predicted_norm == 1
    assert not score.correct and score.correct_norm
    metrics = choice_metrics(["a", "b"], [score, ItemScore((-1.0, -2.0), (1, 1), (3, 3), 0)])
    assert metrics.to_dict() == {
        "n": 2,
        "acc": 0.5,
        "acc_norm": 1.0,
        "categories": {
            "a": {"n": 1, "acc": 0.0, "acc_norm": 1.0},
            "b": {"n": 1, "acc": 1.0, "acc_norm": 1.0},
        },
    }


def test_a_long_prompt_is_cut_from_the_left(model, tokenizer):
    ctx, cont = encode_pair(tokenizer, "Слово " * 40 + "Ответ:", " да, конечно")
    [full] = loglikelihoods(model, [(ctx, cont)], max_length=4096)
    [cut] = loglikelihoods(model, [(ctx, cont)], max_length=len(cont) + 5)
    kept = (ctx + cont)[-(len(cont) + 5) :]
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([kept])).logits[0].double(), -1)
    expected = sum(float(logp[len(kept) - len(cont) - 1 + k, t]) for k, t in enumerate(cont))
    assert cut == pytest.approx(expected, abs=2e-4) and cut != pytest.approx(full, abs=1e-3)
    with pytest.raises(ValueError, match="longer than max_length"):
        loglikelihoods(model, [(ctx, cont)], max_length=len(cont) - 1)


def test_chunks_skip_what_is_done_and_score_the_rest(model, tokenizer):
    chunks = list(iter_choice_scores(model, tokenizer, ITEMS, chunk=2, skip=frozenset({1})))
    assert [[k for k, _ in c] for c in chunks] == [[0, 2], [3]]
    whole = score_choices(model, tokenizer, ITEMS)
    for k, score in (pair for c in chunks for pair in c):
        assert score.logprobs == pytest.approx(whole[k].logprobs, abs=1e-4)


def test_bpc_by_category_scores_each_category_apart(model, tokenizer):
    texts = {"ru": ["Короткий русский текст."], "en": ["A short English text."]}
    result = bpc_by_category(model, tokenizer, texts, ScoringConfig(batch_size=2))
    assert set(result) == {"ru", "en"}
    for category, part in texts.items():
        alone = bits_per_character(model, tokenizer, part)
        assert result[category].chars == len(part[0])
        assert math.isclose(result[category].bpc, alone.bpc, rel_tol=1e-5)


def test_a_batch_that_runs_out_of_memory_is_scored_in_halves(model, tokenizer, monkeypatch):
    expected = score_choices(model, tokenizer, ITEMS, ChoiceConfig(batch_size=16))
    forward = model.forward
    refused, passed = [], []

    def tight(*args, **kwargs):
        rows = kwargs["input_ids"].shape[0]
        if rows > 2:
            refused.append(rows)
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        passed.append(rows)
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", tight)
    got = score_choices(model, tokenizer, ITEMS, ChoiceConfig(batch_size=16))
    assert refused and max(passed) <= 2  # scored in smaller batches, the same numbers
    for a, b in zip(got, expected, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_bits_per_text_batched_equal_each_text_scored_alone(new_tokenizer, ru_lines):
    """Per-text bits from one batched call (windows of several texts in a batch, long texts
    cut into windows) equal each text scored on its own; their sum is bits_per_character."""
    from adaptation.scoring import ScoringConfig, bits_per_character, bits_per_text
    from tests.adaptation.conftest import tiny_model

    model = tiny_model(len(new_tokenizer))
    texts = [ru_lines[0], "", " ".join(ru_lines[1:30]), ru_lines[31]]
    config = ScoringConfig(max_length=64, batch_size=3)
    each = bits_per_text(model, new_tokenizer, texts, config)
    assert each[1].bits == 0 and each[1].chars == 0
    for text, result in zip(texts, each, strict=True):
        alone = bits_per_character(model, new_tokenizer, [text], config)
        assert (result.chars, result.tokens) == (alone.chars, alone.tokens)
        assert result.bits == pytest.approx(alone.bits, rel=1e-5)
    total = bits_per_character(model, new_tokenizer, texts, config)
    assert total.bits == pytest.approx(sum(r.bits for r in each), rel=1e-9)
