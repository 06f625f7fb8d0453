"""Fixtures for the adaptation library: small offline tokenizers and tiny random models.

No Django here: run with ``python -m pytest tests/adaptation -p no:django``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    """SmolLM2's real tokenizer, as the tiny test model's folder holds it (one per module:
    a test may change its padding side)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def ru_lines() -> list[str]:
    from adaptation.corpus import CorpusConfig, wordnet_lines

    return list(wordnet_lines(CorpusConfig(max_lines=1500)))


@pytest.fixture(scope="session")
def old_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory, ru_lines: list[str]) -> Path:
    """A byte-level BPE tokenizer in SmolLM2's style ('Ġ' spaces, ChatML specials)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(ru_lines[:400], trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<|endoftext|>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
    )
    hf.chat_template = CHAT_TEMPLATE
    out = tmp_path_factory.mktemp("old_tok")
    hf.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def old_tokenizer(old_tokenizer_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(old_tokenizer_dir)


@pytest.fixture(scope="session")
def new_tokenizer_dir(tmp_path_factory, ru_lines, old_tokenizer) -> Path:
    from adaptation.tokenizer import TokenizerConfig, train_tokenizer

    out = tmp_path_factory.mktemp("new_tok")
    return train_tokenizer(ru_lines, out, TokenizerConfig(vocab_size=600), original=old_tokenizer)


@pytest.fixture(scope="session")
def new_tokenizer(new_tokenizer_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(new_tokenizer_dir)


def tiny_config(vocab_size: int, *, tied: bool = True):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=tied,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )


def tiny_model(vocab_size: int, *, tied: bool = True, seed: int = 0):
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(copy.deepcopy(tiny_config(vocab_size, tied=tied))).eval()


@pytest.fixture(scope="session")
def old_model_dir(tmp_path_factory, old_tokenizer) -> Path:
    """A tiny random Llama on the old tokenizer, saved as a HF folder."""
    out = tmp_path_factory.mktemp("old_model")
    tiny_model(len(old_tokenizer), tied=False).save_pretrained(out)
    old_tokenizer.save_pretrained(out)
    return out
