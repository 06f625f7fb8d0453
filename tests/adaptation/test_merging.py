import copy
import json

import pytest
import torch
from peft import LoraConfig, get_peft_model

from adaptation.benchmarks import MCItem
from adaptation.merging import (
    RULES,
    MergeConfig,
    PhiScore,
    load_choices,
    merged_model,
    set_merge_factor,
    sweep_merge_factor,
    tradeoff_svg,
)
from adaptation.scoring import ChoiceItem, ScoringConfig, bits_per_character
from tests.adaptation.conftest import tiny_model

IDS = torch.tensor([[1, 5, 6, 7, 8, 9, 10]])
TEXTS = {
    "ru_general": ["Волга впадает в Каспийское море."],
    "en_general": ["The kettle had just begun to whistle."],
}


def _peft(vocab):
    base = tiny_model(vocab)
    lora = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False
    )
    return base, get_peft_model(copy.deepcopy(base), lora).eval()


def test_phi_zero_is_original_and_phi_one_is_fully_merged(new_tokenizer):
    base, model = _peft(len(new_tokenizer))
    original = base(IDS).logits
    full = copy.deepcopy(model).merge_and_unload()(IDS).logits  # default scale alpha / r
    assert not torch.allclose(full, original, atol=1e-3)
    set_merge_factor(model, 0.0)
    torch.testing.assert_close(model(IDS).logits, original)
    torch.testing.assert_close(merged_model(model, 0.0)(IDS).logits, original)
    set_merge_factor(model, 1.0)
    torch.testing.assert_close(model(IDS).logits, full, atol=1e-5, rtol=1e-4)
    half = merged_model(model, 0.5)
    assert not hasattr(half, "peft_config")
    # W0 + 0.5 dW lies between: its logits differ from both ends
    assert not torch.allclose(half(IDS).logits, full) and not torch.allclose(
        half(IDS).logits, original
    )


def test_the_sweep_measures_gain_and_forgetting_against_phi_zero(new_tokenizer, ru_lines):
    base, model = _peft(len(new_tokenizer))
    config = MergeConfig(grid=(1 / 2, 1.0), scoring=ScoringConfig(max_length=64))
    result = sweep_merge_factor(model, new_tokenizer, ru_lines[:4], config, forgetting_texts=TEXTS)
    assert [s.phi for s in result.scores] == [0.0, 0.5, 1.0]  # the reference is always scored
    assert result.best_phi in (0.5, 1.0) and result.select_by == "tradeoff"
    ref = result.scores[0]
    assert (ref.gain, ref.forgetting) == (0.0, 0.0)
    assert ref.bpc == pytest.approx(
        bits_per_character(base, new_tokenizer, ru_lines[:4], config.scoring).bpc, rel=1e-5
    )  # phi = 0 is the model before the LoRA
    for s in result.scores:
        assert s.gain == pytest.approx(ref.bpc - s.bpc)
        for category in TEXTS:
            assert s.forgetting_by_category[f"bpc:{category}"] == pytest.approx(
                (s.bpc_by_category[category] - ref.bpc_by_category[category])
                / ref.bpc_by_category[category]
            )
        assert s.forgetting == pytest.approx(max([0.0, *s.forgetting_by_category.values()]))
        assert s.within_tolerance == (s.forgetting <= config.tolerance)
    data = json.loads(json.dumps(result.to_dict()))  # the recipe stores it as JSON
    assert data["tolerance"] == 0.02 and len(data["scores"]) == 3
    svg = tradeoff_svg(data)
    assert svg.startswith("<?xml") and "tolerance 2 %" in svg and "chosen" in svg


def _score(phi, gain, forgetting, bpc=1.0, accuracy=None):
    return PhiScore(
        phi=phi, bpc=bpc, accuracy=accuracy, gain=gain, relative_gain=gain,
        forgetting=forgetting, within_tolerance=forgetting <= 0.02,
    )  # fmt: skip


def test_the_tradeoff_rule_takes_the_largest_gain_within_tolerance():
    curve = [
        _score(1 / 3, gain=0.10, forgetting=0.00),
        _score(1 / 2, gain=0.20, forgetting=0.015),
        _score(2 / 3, gain=0.30, forgetting=0.05),
        _score(1.0, gain=0.35, forgetting=0.20, bpc=0.5),
    ]
    assert RULES["tradeoff"].choose(curve, 0.02).phi == 1 / 2
    assert RULES["tradeoff"].choose(curve, 0.10).phi == 2 / 3
    assert RULES["tradeoff"].choose(curve, 0.0).phi == 1 / 3
    assert RULES["bpc"].choose(curve, 0.02).phi == 1.0
    assert RULES["min_forgetting"].choose(curve, 0.02).phi == 1 / 3
    assert RULES["balanced"].choose(curve, 0.02).phi == 2 / 3  # 0.30 - 0.05 is the best
    over = [_score(0.5, 0.2, 0.3), _score(1.0, 0.4, 0.1)]
    assert RULES["tradeoff"].choose(over, 0.02).phi == 1.0  # none within: least forgetting


def test_rules_are_selectable_and_a_fallback_is_recorded(new_tokenizer, ru_lines):
    _, model = _peft(len(new_tokenizer))
    config = MergeConfig(grid=(0.0, 1.0), select_by="bpc", scoring=ScoringConfig(max_length=64))
    result = sweep_merge_factor(model, new_tokenizer, ru_lines[:4], config, forgetting_texts={})
    assert result.select_by == "bpc"
    assert result.best_phi == min(result.scores, key=lambda s: s.bpc).phi
    strict = MergeConfig(grid=(1.0,), tolerance=-1.0, scoring=ScoringConfig(max_length=64))
    result = sweep_merge_factor(model, new_tokenizer, ru_lines[:4], strict, forgetting_texts={})
    assert result.best_phi == 1.0 and result.fallback  # nothing can be within a negative tolerance
    with pytest.raises(ValueError, match="needs a multiple-choice set"):
        sweep_merge_factor(model, new_tokenizer, ru_lines[:2], MergeConfig(select_by="accuracy"))


def test_multiple_choice_categories_count_as_forgetting(new_tokenizer, ru_lines):
    _, model = _peft(len(new_tokenizer))
    items = [
        MCItem("Столица России?", ("Москва", "Париж", "Рим"), 0, "1", "general"),
        MCItem("Which is a colour?", ("green", "seven"), 0, "2", "english"),
    ]
    config = MergeConfig(grid=(0.0, 1.0), select_by="auto", scoring=ScoringConfig(max_length=64))
    result = sweep_merge_factor(
        model, new_tokenizer, ru_lines[:5], config, choices=items, forgetting_texts={}
    )
    assert result.select_by == "accuracy"
    for s in result.scores:
        assert set(s.accuracy_by_category) == {"general", "english"}
        assert {"acc:general", "acc:english"} == set(s.forgetting_by_category)
        assert s.accuracy in (0.0, 0.5, 1.0)
    legacy = [ChoiceItem("Столица России — ", ("Москва", "Париж"), 0)]
    result = sweep_merge_factor(
        model, new_tokenizer, ru_lines[:3], MergeConfig(grid=(1.0,)), choices=legacy,
        forgetting_texts={},
    )  # fmt: skip
    assert set(result.scores[0].accuracy_by_category) == {"all"}


def test_load_choices_reads_benchmark_files_and_the_older_options_format(tmp_path):
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"question": "q", "options": ["a", "b"], "answer": 1}) + "\n")
    [item] = load_choices(old)
    assert (item.choices, item.answer) == (("a", "b"), 1)
    new = tmp_path / "new.jsonl"
    new.write_text(
        json.dumps({"question": "q", "choices": ["a", "b"], "answer": 0, "category": "c"}) + "\n"
    )
    [item] = load_choices(new)
    assert (item.choices, item.category) == (("a", "b"), "c")


def test_phi_interpolates_fully_trained_embeddings_too(new_tokenizer, tmp_path):
    """With modules_to_save, φ = 0 is the original model, 1 the trained one, 1/2 the midpoint."""
    base = tiny_model(len(new_tokenizer), tied=False)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], init_lora_weights=False,
                      modules_to_save=["embed_tokens", "lm_head"])  # fmt: skip
    model = get_peft_model(copy.deepcopy(base), lora).eval()
    with torch.no_grad():
        for name in ("embed_tokens", "lm_head"):
            saved = model.get_submodule(f"base_model.model.{'model.' * (name != 'lm_head')}{name}")
            saved.modules_to_save["default"].weight.add_(0.5)  # the trained W1 = W0 + 0.5
    w0 = base.get_input_embeddings().weight
    original = base(IDS).logits
    set_merge_factor(model, 0.0)
    torch.testing.assert_close(model(IDS).logits, original)
    half = merged_model(model, 0.5)  # a copy of a model already set to φ = 0
    torch.testing.assert_close(half.get_input_embeddings().weight, w0 + 0.25)
    torch.testing.assert_close(half.get_output_embeddings().weight,
                               base.get_output_embeddings().weight + 0.25)  # fmt: skip
    full = merged_model(model, 1.0)
    torch.testing.assert_close(full.get_input_embeddings().weight, w0 + 0.5)
