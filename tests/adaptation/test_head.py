"""The frequency-prior output head: the formula, untying, and the choice by held-out bpc."""

from __future__ import annotations

import torch

from adaptation.head import (
    LOOP_MARGIN,
    choose_head,
    frequency_head_rows,
    greedy_distinct_share,
    loop_prompts,
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
        assert set(choice.bpc) == set(choice.distinct_3gram) == {"tied", "frequency"}
        loops = choice.distinct_3gram["frequency"] < choice.distinct_3gram["tied"] - LOOP_MARGIN
        assert choice.chosen == ("tied" if loops else min(choice.bpc, key=choice.bpc.get))
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


def test_auto_refuses_a_head_with_fewer_bits_that_loops(monkeypatch, new_tokenizer, ru_lines):
    """Fewer bits per character are not enough: a frequency head whose greedy continuations
    repeat themselves more than the tied head's is not kept."""
    from adaptation import head as head_module
    from adaptation import scoring

    def bits(model, tokenizer, texts):  # the untied (frequency) head always has fewer bits
        untied = model.get_output_embeddings().weight is not model.get_input_embeddings().weight
        return scoring.BpcResult(bits=2.0 if untied else 3.0, chars=1, tokens=1)

    monkeypatch.setattr(scoring, "bits_per_character", bits)
    picks = {}
    for frequency_share in (0.85, 0.2):
        shares = iter([0.9, frequency_share])  # tied first, then the frequency head
        monkeypatch.setattr(head_module, "greedy_distinct_share", lambda *a, s=shares, **k: next(s))
        model = tiny_model(len(new_tokenizer), tied=True, seed=1)
        choice = choose_head(model, new_tokenizer, ru_lines[:600], ru_lines[-30:], "auto")
        assert choice.bpc == {"tied": 3.0, "frequency": 2.0}
        assert choice.distinct_3gram == {"tied": 0.9, "frequency": frequency_share}
        picks[frequency_share] = choice.chosen
        untied = model.get_output_embeddings().weight is not model.get_input_embeddings().weight
        assert untied is (choice.chosen == "frequency")
    assert picks == {0.85: "frequency", 0.2: "tied"}


def test_greedy_distinct_share_reads_the_models_own_greedy_continuations(new_tokenizer, ru_lines):
    from adaptation.repetition import mean_distinct_share

    model = tiny_model(len(new_tokenizer), tied=True, seed=2)
    prompts = loop_prompts(ru_lines[-30:])
    assert len(prompts) == 4 and all(len(p.split()) == 4 for p in prompts)
    texts = []
    for prompt in prompts:
        ids = new_tokenizer(prompt, return_tensors="pt")["input_ids"]
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=24,
                             min_new_tokens=24, do_sample=False,
                             pad_token_id=new_tokenizer.pad_token_id)  # fmt: skip
        texts.append(new_tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    assert greedy_distinct_share(model, new_tokenizer, prompts) == mean_distinct_share(texts)
