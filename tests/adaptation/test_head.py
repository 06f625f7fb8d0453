"""The frequency-prior output head: the formula, untying, and the choice by held-out bpc."""

from __future__ import annotations

import torch

from adaptation.head import (
    choose_head,
    frequency_head_rows,
    mean_final_hidden,
    set_untied_head,
    unigram_log_probs,
)
from tests.adaptation.conftest import tiny_model


def test_the_prior_adds_the_centred_log_frequency_along_the_mean_hidden_state():
    rows = torch.randn(5, 4)
    log_p = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.05, 0.05]))
    hidden = torch.tensor([1.0, 2.0, 0.0, -1.0])
    head = frequency_head_rows(rows, log_p, hidden, scale=0.5, neutral_ids=[4])
    centred = log_p - log_p.mean()
    torch.testing.assert_close(
        head @ hidden, 0.5 * rows @ hidden + torch.cat([centred[:4], torch.zeros(1)])
    )


def test_unigram_log_probs_are_smoothed_counts(new_tokenizer):
    texts = ["мама мыла раму", "мама"]
    log_p = unigram_log_probs(new_tokenizer, texts, len(new_tokenizer))
    counts = torch.ones(len(new_tokenizer))
    for ids in new_tokenizer(texts, add_special_tokens=False)["input_ids"]:
        for i in ids:
            counts[i] += 1
    torch.testing.assert_close(log_p, (counts / counts.sum()).log())


def test_mean_final_hidden_averages_every_token_whatever_the_padding(new_tokenizer):
    model = tiny_model(len(new_tokenizer))
    texts = ["короткая", "строка подлиннее, чтобы было дополнение справа"]
    together = mean_final_hidden(model, new_tokenizer, texts, batch_size=2)
    states, count = torch.zeros(together.shape), 0
    for text in texts:  # one at a time: no padding at all
        ids = torch.tensor([new_tokenizer(text, add_special_tokens=False)["input_ids"]])
        out = model.get_decoder()(input_ids=ids).last_hidden_state[0]
        states += out.sum(0)
        count += out.shape[0]
    torch.testing.assert_close(together, states / count, atol=1e-5, rtol=1e-4)


def test_an_untied_head_is_saved_and_loaded_as_its_own(tmp_path, new_tokenizer):
    from transformers import AutoModelForCausalLM

    model = tiny_model(len(new_tokenizer), tied=True)
    rows = torch.randn(len(new_tokenizer), 32)
    set_untied_head(model, rows)
    assert model.get_output_embeddings().weight is not model.get_input_embeddings().weight
    model.save_pretrained(tmp_path)
    back = AutoModelForCausalLM.from_pretrained(tmp_path)
    torch.testing.assert_close(back.get_output_embeddings().weight, rows)
    torch.testing.assert_close(
        back.get_input_embeddings().weight, model.get_input_embeddings().weight
    )


def test_auto_keeps_the_head_with_fewer_bits_per_character(new_tokenizer, ru_lines):
    """Auto measures both heads on held-out text and leaves the model with the lower one;
    the numbers it reports are the model's real bpc."""
    from adaptation.scoring import bits_per_character

    heldout = ru_lines[-30:]
    for seed in range(3):
        model = tiny_model(len(new_tokenizer), tied=True, seed=seed)
        choice = choose_head(model, new_tokenizer, ru_lines[:600], heldout, "auto")
        assert set(choice.bpc) == {"tied", "frequency"}
        assert choice.chosen == min(choice.bpc, key=choice.bpc.get)
        after = bits_per_character(model, new_tokenizer, heldout)
        assert after.bits / after.chars == choice.bpc[choice.chosen]
        untied = model.get_output_embeddings().weight is not model.get_input_embeddings().weight
        assert untied is (choice.chosen == "frequency")
        assert model.config.tie_word_embeddings is not untied

    forced = tiny_model(len(new_tokenizer), tied=True)
    assert choose_head(forced, new_tokenizer, ru_lines[:600], heldout, "frequency").chosen == (
        "frequency"
    )
    assert forced.get_output_embeddings().weight is not forced.get_input_embeddings().weight
    tied = tiny_model(len(new_tokenizer), tied=True)
    kept = choose_head(tied, new_tokenizer, ru_lines[:600], heldout, "tied")
    assert kept.chosen == "tied" and kept.bpc == {}
    assert tied.get_output_embeddings().weight is tied.get_input_embeddings().weight
