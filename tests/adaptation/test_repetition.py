import pytest

from adaptation.repetition import distinct_share, mean_distinct_share, tokens


def test_tokens_split_words_and_punctuation_case_folded():
    assert tokens("Волга, впадает!") == ["волга", ",", "впадает", "!"]


def test_a_loop_scores_low_and_fluent_text_scores_one():
    # "толькох , толькох , ...": 11 tokens, 9 trigrams alternating between 2 distinct
    loop = ", ".join(["толькох"] * 6)
    assert distinct_share(loop) == pytest.approx(2 / 9)
    assert distinct_share("Небо голубое, потому что воздух рассеивает синий свет.") == 1.0
    assert distinct_share(",,,,,,") == pytest.approx(1 / 4)


def test_short_texts_have_no_share_and_are_left_out_of_the_mean():
    assert distinct_share("да") is None and distinct_share("") is None
    assert mean_distinct_share(["да", "a b c a b c", "x y z"]) == pytest.approx((3 / 4 + 1) / 2)
    assert mean_distinct_share(["", "нет"]) is None
    with pytest.raises(ValueError):
        distinct_share("a b", 0)
