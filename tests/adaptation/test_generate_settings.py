import pytest

from adaptation.generate import GenerationSettings


def test_settings_refuse_impossible_token_limits():
    with pytest.raises(ValueError, match="min_new_tokens"):
        GenerationSettings(max_new_tokens=8, min_new_tokens=9)
    with pytest.raises(ValueError, match="max_new_tokens"):
        GenerationSettings(max_new_tokens=0)


def test_settings_round_trip_and_ignore_unknown_keys():
    settings = GenerationSettings(max_new_tokens=32, min_new_tokens=4, temperature=0.7, seed=3)
    assert GenerationSettings.from_dict({**settings.to_dict(), "unknown": 1}) == settings
