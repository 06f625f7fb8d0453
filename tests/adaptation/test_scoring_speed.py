import math

import torch

from adaptation.scoring import (
    ChoiceItem,
    ScoringConfig,
    bits_per_character,
    choice_accuracy,
    option_logprob,
)
from adaptation.speed import SpeedConfig, measure_speed
from tests.adaptation.conftest import tiny_model


def _uniform(vocab):
    model = tiny_model(vocab, tied=False)
    with torch.no_grad():
        model.lm_head.weight.zero_()
    return model


def test_bpc_of_uniform_model_is_log2_vocab_per_char(new_tokenizer):
    texts = ["Привет, мир.", "Искусственный интеллект — это область информатики." * 4]
    model = _uniform(len(new_tokenizer))
    result = bits_per_character(model, new_tokenizer, texts, ScoringConfig(max_length=16))
    tokens = sum(len(new_tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    assert result.tokens == tokens and result.chars == sum(map(len, texts))
    assert math.isclose(
        result.bpc, math.log2(len(new_tokenizer)) * tokens / result.chars, rel_tol=1e-5
    )


def test_windows_do_not_change_a_short_text_score(new_tokenizer):
    model = tiny_model(len(new_tokenizer))
    texts = ["Короткая строка для проверки."]
    a = bits_per_character(model, new_tokenizer, texts, ScoringConfig(max_length=512)).bits
    b = bits_per_character(
        model, new_tokenizer, texts, ScoringConfig(max_length=512, batch_size=1)
    ).bits
    assert math.isclose(a, b, rel_tol=1e-5)


def test_choice_accuracy_follows_option_likelihood(new_tokenizer):
    model = tiny_model(len(new_tokenizer))
    options = ("Москва", "Париж")
    scores = [option_logprob(model, new_tokenizer, "Столица: ", o) for o in options]
    best = max(range(2), key=scores.__getitem__)
    assert choice_accuracy(model, new_tokenizer, [ChoiceItem("Столица: ", options, best)]) == 1.0
    assert (
        choice_accuracy(model, new_tokenizer, [ChoiceItem("Столица: ", options, 1 - best)]) == 0.0
    )


def test_speed_reports_per_1000_chars(new_tokenizer):
    model = tiny_model(len(new_tokenizer))
    text = "Библиотеки за сто лет сильно изменились."
    result = measure_speed(model, new_tokenizer, text, SpeedConfig(repeats=1, warmup=0))
    assert result.chars == len(text)
    assert result.tokens == len(new_tokenizer(text, add_special_tokens=False)["input_ids"])
    assert result.forced_seconds > 0 and result.single_pass_seconds > 0
    assert math.isclose(result.forced_s_per_1000_chars, result.forced_seconds / len(text) * 1000)
