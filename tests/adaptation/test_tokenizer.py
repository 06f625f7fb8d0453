import pytest
from transformers import AutoTokenizer

from adaptation.tokenizer import TokenizerConfig, train_tokenizer

RUSSIAN = (
    "Искусственный интеллект — это область информатики.\n"
    "В 2024 году   модели стали лучше; «кавычки», ёлка, ЁЖ, emoji 🙂 и\tтабуляция."
)


def test_unigram_round_trips_russian_exactly(new_tokenizer):
    ids = new_tokenizer(RUSSIAN)["input_ids"]
    assert new_tokenizer.decode(ids) == RUSSIAN
    assert new_tokenizer.decode(ids, skip_special_tokens=True) == RUSSIAN
    # byte fallback: the emoji is not <unk>
    assert new_tokenizer.unk_token_id not in ids


def test_keeps_special_tokens_and_chat_template(new_tokenizer, old_tokenizer):
    for role in ("bos_token", "eos_token", "pad_token", "unk_token"):
        assert getattr(new_tokenizer, role) == getattr(old_tokenizer, role)
    assert new_tokenizer.chat_template == old_tokenizer.chat_template
    chat = new_tokenizer.apply_chat_template(
        [{"role": "user", "content": "Привет"}], tokenize=False, add_generation_prompt=True
    )
    assert chat == "<|im_start|>user\nПривет<|im_end|>\n<|im_start|>assistant\n"
    ids = new_tokenizer(chat, add_special_tokens=False)["input_ids"]
    assert ids[0] == new_tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert new_tokenizer.decode(ids) == chat
    # the old tokenizer does not prepend bos, neither does the new one
    assert (
        new_tokenizer("а")["input_ids"] == new_tokenizer("а", add_special_tokens=False)["input_ids"]
    )


def test_split_digits_and_vocab_size(new_tokenizer):
    assert len(new_tokenizer) == 600
    pieces = new_tokenizer.convert_ids_to_tokens(new_tokenizer("12345")["input_ids"])
    # split_digits: one token per digit (a piece, or a byte piece for unseen digits)
    assert len([p for p in pieces if p.strip("▁")]) == 5


@pytest.mark.parametrize("model_type", ["bpe"])
def test_bpe_option_round_trips(tmp_path, ru_lines, model_type):
    out = train_tokenizer(
        ru_lines[:800], tmp_path, TokenizerConfig(vocab_size=500, model_type=model_type)
    )
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok(RUSSIAN, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == RUSSIAN
    assert tok.bos_token == "<s>" and tok("а")["input_ids"][0] == tok.bos_token_id
    assert len(ids) < len(RUSSIAN.encode()) * 0.8  # merges were learned


def test_chat_markers_and_ascii_stay_whole(new_tokenizer):
    """What the frozen body knows: role words after a marker are one piece each, and ASCII
    text (English, code) never falls back to byte pieces, however Russian the corpus."""
    for role in ("system", "user", "assistant"):
        tokens = new_tokenizer.tokenize(f"<|im_start|>{role}\n")
        assert tokens[:2] == ["<|im_start|>", role], tokens
    rendered = new_tokenizer.apply_chat_template(
        [{"role": "user", "content": "Привет"}], add_generation_prompt=True, tokenize=False
    )
    assert "assistant" in new_tokenizer.tokenize(rendered)
    code = "def f(x): return {'key': [1, 2]} # Yes, QUIZ!"
    tokens = new_tokenizer.tokenize(code)
    assert not any(t.startswith("<0x") for t in tokens), tokens
    assert new_tokenizer.decode(new_tokenizer(code, add_special_tokens=False)["input_ids"]) == code


def test_template_words_are_the_roles_and_the_literal_words():
    from adaptation.tokenizer import template_words

    template = "{{'<|im_start|>' + message['role'] + '\\n'}}{{ 'You are a helpful assistant' }}"
    assert template_words(template) == ["system", "user", "assistant", "tool", "helpful"]
    assert template_words(None) == ["system", "user", "assistant", "tool"]
