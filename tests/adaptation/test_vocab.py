import re

import pytest
import torch

from adaptation.modelio import load_model
from adaptation.vocab import (
    INIT_METHODS,
    InitMethod,
    SwapConfig,
    fit_projection,
    save_adapted,
    spell_new_tokens,
    swap_vocabulary,
)
from tests.adaptation.conftest import tiny_model


def _multi_piece_word_token(new_tokenizer, old_tokenizer) -> tuple[int, list[int]]:
    """A new word-start token that the old tokenizer spells with several pieces."""
    for token, new_id in sorted(new_tokenizer.get_vocab().items(), key=lambda kv: kv[1]):
        if token.startswith("▁") and len(token) > 4 and token[1:].isalpha():
            old_ids = old_tokenizer(" " + token[1:], add_special_tokens=False)["input_ids"]
            if len(old_ids) >= 2:
                return new_id, old_ids
    raise AssertionError("no multi-piece token found")


@pytest.mark.parametrize("tied", [True, False])
def test_mean_init_is_average_of_spelling_rows(tied, old_tokenizer, new_tokenizer):
    model = tiny_model(len(old_tokenizer), tied=tied)
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()
    report = swap_vocabulary(model, old_tokenizer, new_tokenizer, SwapConfig(init="mean"))
    assert report.tied is tied
    new_in = model.get_input_embeddings().weight
    new_out = model.get_output_embeddings().weight
    assert new_in.shape[0] == len(new_tokenizer) == model.config.vocab_size
    assert (new_out is new_in) is tied
    new_id, old_ids = _multi_piece_word_token(new_tokenizer, old_tokenizer)
    torch.testing.assert_close(new_in[new_id], old_in[old_ids].mean(0))
    torch.testing.assert_close(new_out[new_id], old_out[old_ids].mean(0))
    # special tokens take their old counterparts' rows
    for special in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        old_id = old_tokenizer.convert_tokens_to_ids(special)
        new_sid = new_tokenizer.convert_tokens_to_ids(special)
        torch.testing.assert_close(new_in[new_sid], old_in[old_id])
        torch.testing.assert_close(new_out[new_sid], old_out[old_id])
    # byte pieces map to the byte-level character ('Ġ' is the space byte)
    space = new_tokenizer.convert_tokens_to_ids("<0x20>")
    torch.testing.assert_close(new_in[space], old_in[old_tokenizer.convert_tokens_to_ids("Ġ")])
    assert model.config.eos_token_id == new_tokenizer.eos_token_id
    assert model.generation_config.eos_token_id == new_tokenizer.eos_token_id


def test_spelling_uses_word_start_form(old_tokenizer, new_tokenizer):
    spellings, report = spell_new_tokens(old_tokenizer, new_tokenizer)
    new_id, old_ids = _multi_piece_word_token(new_tokenizer, old_tokenizer)
    assert spellings[new_id] == old_ids
    assert old_tokenizer.convert_ids_to_tokens(old_ids[0]).startswith("Ġ")
    assert report.special_mapped == 3 and report.byte_mapped == 256


def test_weighted_mean_and_random(old_tokenizer, new_tokenizer):
    model = tiny_model(len(old_tokenizer), tied=True)
    old = model.get_input_embeddings().weight.detach().clone()
    swap_vocabulary(model, old_tokenizer, new_tokenizer, SwapConfig("weighted_mean", decay=0.5))
    new_id, old_ids = _multi_piece_word_token(new_tokenizer, old_tokenizer)
    w = 0.5 ** torch.arange(len(old_ids), dtype=torch.float32)
    expected = (w[:, None] * old[old_ids]).sum(0) / w.sum()
    torch.testing.assert_close(model.get_input_embeddings().weight[new_id], expected)

    model = tiny_model(len(old_tokenizer), tied=True)
    swap_vocabulary(model, old_tokenizer, new_tokenizer, SwapConfig("random", seed=1))
    rows = model.get_input_embeddings().weight.detach()
    norms = rows[200:].norm(dim=1)
    torch.testing.assert_close(norms, torch.full_like(norms, float(old.norm(dim=1).mean())))
    assert not torch.allclose(rows[new_id], old[old_ids].mean(0))


def test_a_registered_init_method_initialises_the_swap(monkeypatch, old_tokenizer, new_tokenizer):
    """The swap calls whatever the registry holds; specials still take their old rows."""
    calls = []

    def halves(old_rows, spellings, config, refs):
        calls.append(old_rows.shape)
        return torch.full((len(spellings), old_rows.shape[1]), 0.5), None

    monkeypatch.setitem(INIT_METHODS, "halves", InitMethod("halves", halves, "one half"))
    model = tiny_model(len(old_tokenizer), tied=False)
    old_in = model.get_input_embeddings().weight.detach().clone()
    report = swap_vocabulary(model, old_tokenizer, new_tokenizer, SwapConfig("halves"))
    assert report.init == "halves" and len(calls) == 2  # embeddings and the untied head
    new_in = model.get_input_embeddings().weight.detach()
    new_id, _old_ids = _multi_piece_word_token(new_tokenizer, old_tokenizer)
    assert torch.all(new_in[new_id] == 0.5)
    special = new_tokenizer.convert_tokens_to_ids("<|im_end|>")
    torch.testing.assert_close(
        new_in[special], old_in[old_tokenizer.convert_tokens_to_ids("<|im_end|>")]
    )
    with pytest.raises(ValueError, match="init must be one of mean, weighted_mean"):
        SwapConfig("nope")


def test_fit_projection_recovers_known_linear_map():
    torch.manual_seed(0)
    source = torch.randn(400, 16, dtype=torch.float64)
    true_map = torch.randn(16, 24, dtype=torch.float64)
    weight, residual = fit_projection(source, source @ true_map, ridge=0.0)
    torch.testing.assert_close(weight, true_map)
    assert residual < 1e-10


@pytest.mark.parametrize("tied", [True, False])
def test_projection_init_reproduces_a_linear_target(tied, old_tokenizer, new_tokenizer):
    reference = tiny_model(len(old_tokenizer), tied=tied)
    swap_vocabulary(reference, old_tokenizer, new_tokenizer, SwapConfig("mean"))
    mean_in = reference.get_input_embeddings().weight.detach().clone()
    mean_out = reference.get_output_embeddings().weight.detach().clone()
    true_map = torch.randn(32, 32, generator=torch.Generator().manual_seed(5)) / 4
    target = tiny_model(len(new_tokenizer), tied=tied, seed=3)
    with torch.no_grad():
        target.get_input_embeddings().weight.copy_(mean_in @ true_map)
        if not tied:
            target.get_output_embeddings().weight.copy_(mean_out @ true_map.T)
    model = tiny_model(len(old_tokenizer), tied=tied)
    report = swap_vocabulary(
        model, old_tokenizer, new_tokenizer, SwapConfig("projection", ridge=0.0), target=target
    )
    assert report.projection_residual["embeddings"] < 1e-4
    specials = set(new_tokenizer.all_special_ids)
    rows = [i for i in range(len(new_tokenizer)) if i not in specials]
    torch.testing.assert_close(
        model.get_input_embeddings().weight[rows], (mean_in @ true_map)[rows], atol=1e-4, rtol=1e-3
    )
    if not tied:
        torch.testing.assert_close(
            model.get_output_embeddings().weight[rows],
            (mean_out @ true_map.T)[rows],
            atol=1e-4,
            rtol=1e-3,
        )


def test_saved_adapted_model_reloads_and_generates(tmp_path, old_tokenizer, new_tokenizer):
    from adaptation.generate import GenerationSettings, generate_answers

    model = tiny_model(len(old_tokenizer), tied=False)
    report = swap_vocabulary(model, old_tokenizer, new_tokenizer)
    save_adapted(model, new_tokenizer, tmp_path / "adapted", report)
    assert (tmp_path / "adapted" / "model.safetensors").exists()
    loaded = load_model(tmp_path / "adapted", cache_dir=tmp_path / "cache", device="cpu")
    assert loaded.model.config.vocab_size == len(new_tokenizer) == len(loaded.tokenizer)
    torch.testing.assert_close(
        loaded.model.get_input_embeddings().weight, model.get_input_embeddings().weight
    )
    settings = GenerationSettings(max_new_tokens=6, batch_size=2)
    answers = list(generate_answers(loaded, ["Привет!", "Что такое интеллект?"], settings))
    assert len(answers) == 2
    assert all(a.new_tokens >= 1 for a in answers)


def test_a_self_swap_reproduces_every_row(new_tokenizer):
    """A sentencepiece-style tokenizer swapped onto itself: every row is its own old row
    (a word-continuation piece like ``ость`` must not gain a word-start ``▁``)."""
    model = tiny_model(len(new_tokenizer), tied=False)
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()
    spellings, _ = spell_new_tokens(new_tokenizer, new_tokenizer)
    wrong = [
        (new_tokenizer.convert_ids_to_tokens(i), s) for i, s in enumerate(spellings) if s != [i]
    ]
    assert wrong == []
    swap_vocabulary(model, new_tokenizer, new_tokenizer, SwapConfig(init="mean"))
    assert torch.equal(model.get_input_embeddings().weight, old_in)
    assert torch.equal(model.get_output_embeddings().weight, old_out)


def test_continuation_pieces_of_a_sentencepiece_old_tokenizer_get_no_word_start(
    tmp_path, ru_lines, old_tokenizer, new_tokenizer
):
    """Old tokenizer sentencepiece-style (LLaMA, Mistral, an adapted model): a new piece that
    continues a word is spelled by old pieces that continue a word."""
    from transformers import AutoTokenizer

    from adaptation.tokenizer import TokenizerConfig, train_tokenizer

    other = AutoTokenizer.from_pretrained(
        train_tokenizer(
            ru_lines[500:], tmp_path, TokenizerConfig(vocab_size=450), original=old_tokenizer
        )
    )
    spellings, _ = spell_new_tokens(new_tokenizer, other)
    tokens = other.convert_ids_to_tokens(list(range(len(other))))
    checked = 0
    for new_id, token in enumerate(tokens):
        if token.startswith(("▁", "<")) or not spellings[new_id]:
            continue
        first = new_tokenizer.convert_ids_to_tokens(spellings[new_id][0])
        assert not first.startswith("▁"), (token, first)
        pieces = new_tokenizer.convert_ids_to_tokens(spellings[new_id])
        spelled = b"".join(
            bytes([int(p[3:5], 16)]) if re.fullmatch(r"<0x[0-9A-F]{2}>", p) else p.encode()
            for p in pieces
        )
        assert spelled.decode() == token, (token, pieces)
        checked += 1
    assert checked > 50


def _instruct_of(base, maps: tuple[torch.Tensor, torch.Tensor], tied: bool, seed: int = 9):
    """A model whose rows are ``base``'s rows times a known map (embeddings; head if untied)."""
    instruct = tiny_model(base.get_input_embeddings().weight.shape[0], tied=tied, seed=seed)
    with torch.no_grad():
        instruct.get_input_embeddings().weight.copy_(base.get_input_embeddings().weight @ maps[0])
        if not tied:
            head = base.get_output_embeddings().weight
            instruct.get_output_embeddings().weight.copy_(head @ maps[1])
    return instruct


@pytest.mark.parametrize("lep_fit", ["old", "converted"])
@pytest.mark.parametrize("tied", [True, False])
def test_lep_carries_the_donor_rows_through_the_base_to_instruct_map(
    tied, lep_fit, old_tokenizer, new_tokenizer
):
    """LEP: instruct = base · A on the old vocabulary, so the adapted instruct is donor · A."""
    generator = torch.Generator().manual_seed(7)
    maps = (torch.randn(32, 32, generator=generator) / 4, torch.randn(32, 32, generator=generator))
    base = tiny_model(len(old_tokenizer), tied=tied, seed=1)
    instruct = _instruct_of(base, maps, tied)
    old_rows = instruct.get_input_embeddings().weight.detach().clone()
    donor = tiny_model(len(new_tokenizer), tied=tied, seed=3)  # the base, adapted
    config = SwapConfig("lep", ridge=0.0, lep_fit=lep_fit)
    report = swap_vocabulary(
        instruct, old_tokenizer, new_tokenizer, config, target=donor, base=base
    )
    assert report.projection_residual["embeddings"] < 1e-4
    specials = set(new_tokenizer.all_special_ids)
    rows = [i for i in range(len(new_tokenizer)) if i not in specials]
    donor_in = donor.get_input_embeddings().weight.detach()
    got = instruct.get_input_embeddings().weight.detach()
    torch.testing.assert_close(got[rows], (donor_in @ maps[0])[rows], atol=1e-4, rtol=1e-3)
    im_end = new_tokenizer.convert_tokens_to_ids("<|im_end|>")
    torch.testing.assert_close(
        got[im_end], old_rows[old_tokenizer.convert_tokens_to_ids("<|im_end|>")]
    )  # a special keeps this model's own row, not the donor's
    if not tied:
        assert report.projection_residual["lm_head"] < 1e-4
        donor_out = donor.get_output_embeddings().weight.detach()
        torch.testing.assert_close(
            instruct.get_output_embeddings().weight.detach()[rows],
            (donor_out @ maps[1])[rows],
            atol=1e-4,
            rtol=1e-3,
        )
    else:
        assert instruct.get_output_embeddings().weight is instruct.get_input_embeddings().weight


def test_lep_of_a_model_equal_to_its_base_is_the_donor(old_tokenizer, new_tokenizer):
    base = tiny_model(len(old_tokenizer), tied=True, seed=1)
    same = tiny_model(len(old_tokenizer), tied=True, seed=1)
    donor = tiny_model(len(new_tokenizer), tied=True, seed=3)
    swap_vocabulary(same, old_tokenizer, new_tokenizer, SwapConfig("lep"), target=donor, base=base)
    specials = set(new_tokenizer.all_special_ids)
    rows = [i for i in range(len(new_tokenizer)) if i not in specials]
    torch.testing.assert_close(
        same.get_input_embeddings().weight.detach()[rows],
        donor.get_input_embeddings().weight.detach()[rows],
        atol=1e-3,
        rtol=1e-3,
    )


def test_lep_says_which_model_is_missing_or_wrong(old_tokenizer, new_tokenizer):
    donor = tiny_model(len(new_tokenizer), seed=3)
    with pytest.raises(ValueError, match="needs the base model"):
        swap_vocabulary(tiny_model(len(old_tokenizer)), old_tokenizer, new_tokenizer,
                        SwapConfig("lep"), target=donor)  # fmt: skip
    with pytest.raises(ValueError, match="needs a model on the new tokenizer"):
        swap_vocabulary(tiny_model(len(old_tokenizer)), old_tokenizer, new_tokenizer,
                        SwapConfig("lep"), base=tiny_model(len(old_tokenizer)))  # fmt: skip
    with pytest.raises(ValueError, match="LEP needs the base of this model"):
        swap_vocabulary(tiny_model(len(old_tokenizer)), old_tokenizer, new_tokenizer,
                        SwapConfig("lep"), target=donor, base=tiny_model(len(new_tokenizer)))  # fmt: skip
    with pytest.raises(ValueError, match="lep_fit must be one of old, converted"):
        SwapConfig("lep", lep_fit="new")
