import copy

import torch
from peft import LoraConfig, get_peft_model

from adaptation.merging import MergeConfig, merged_model, set_merge_factor, sweep_merge_factor
from adaptation.scoring import ChoiceItem
from tests.adaptation.conftest import tiny_model

IDS = torch.tensor([[1, 5, 6, 7, 8, 9, 10]])


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


def test_sweep_keeps_the_best_phi(new_tokenizer, ru_lines):
    _, model = _peft(len(new_tokenizer))
    result = sweep_merge_factor(model, new_tokenizer, ru_lines[:4], MergeConfig())
    assert [s.phi for s in result.scores] == [0.0, 1 / 3, 1 / 2, 2 / 3, 1.0]
    assert result.select_by == "bpc"
    assert result.best_phi == min(result.scores, key=lambda s: s.bpc).phi
    items = [ChoiceItem("Столица России — ", ("Москва", "Париж", "Рим"), 0)] * 2
    result = sweep_merge_factor(
        model, new_tokenizer, ru_lines[:5], MergeConfig(grid=(0.0, 1.0)), choices=items
    )
    assert result.select_by == "accuracy"
    assert all(s.accuracy in (0.0, 1.0) for s in result.scores)
