from adaptation.fertility import count_words, fertility, pieces


def test_fertility_counts(new_tokenizer, old_tokenizer):
    text = "Искусственный интеллект решает задачи.\nВторая строка, 2024 год."
    assert count_words(text) == 8
    report = fertility(new_tokenizer, text)
    tokens = sum(
        len(new_tokenizer(line, add_special_tokens=False)["input_ids"])
        for line in text.splitlines()
    )
    assert report.tokens == tokens and report.words == 8
    assert report.tokens_per_word == tokens / 8
    assert report.chars_per_token == (len(text) - 1) / tokens
    assert report.probes["интеллект"] == pieces(new_tokenizer, "интеллект")


def test_pieces_spell_the_word(new_tokenizer, old_tokenizer):
    for tok in (new_tokenizer, old_tokenizer):
        parts = pieces(tok, "интеллект")
        assert "".join(parts) == "интеллект"
        assert 1 <= len(parts) <= len(tok("интеллект", add_special_tokens=False)["input_ids"])
