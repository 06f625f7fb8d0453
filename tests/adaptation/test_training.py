import json

import pytest
import torch

from adaptation.training import TrainConfig, pack_texts, train
from tests.adaptation.conftest import tiny_model

CFG = TrainConfig(steps=4, batch_size=2, seq_len=32, learning_rate=1e-2)


def test_embeddings_only_training_freezes_the_body(new_tokenizer, ru_lines):
    model = tiny_model(len(new_tokenizer), tied=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    model, result = train(
        model, new_tokenizer, ru_lines[:200], CFG, on_step=lambda *a: seen.append(a)
    )
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"model.embed_tokens.weight", "lm_head.weight"}
    assert [s[:2] for s in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert result.losses == [s[2] for s in seen] and len(result.losses) == 4
    assert result.tokens == 4 * 2 * 32
    assert result.tokens_per_second > 0 and result.chars_per_second > 0
    assert result.trainable_params == 2 * len(new_tokenizer) * 32


def test_packing_counts_characters_of_the_text(new_tokenizer):
    texts = ["Привет, мир! Это первая строка.", "Вторая строка текста подлиннее первой."] * 20
    packed = pack_texts(new_tokenizer, texts, 16)
    total = sum(len(t) for t in texts)
    assert packed.blocks.shape[1] == 16
    assert 0 < float(packed.chars.sum()) <= total


def test_resume_from_checkpoint_is_exact(tmp_path, new_tokenizer, ru_lines):
    texts = ru_lines[:200]
    full, full_result = train(tiny_model(len(new_tokenizer)), new_tokenizer, texts, CFG)

    class Killed(Exception):
        pass

    def die_after_two(step: int, total: int, loss: float) -> None:
        if step == 3:  # the checkpoint of step 2 is on disk; the worker dies in step 3
            raise Killed

    every = TrainConfig(**{**CFG.__dict__, "checkpoint_every": 1})
    with pytest.raises(Killed):
        train(tiny_model(len(new_tokenizer)), new_tokenizer, texts, every,
              checkpoint_dir=tmp_path, on_step=die_after_two)  # fmt: skip
    assert json.loads((tmp_path / "state.json").read_text())["step"] == 2
    resumed, result = train(
        tiny_model(len(new_tokenizer)),
        new_tokenizer,
        texts,
        CFG,
        checkpoint_dir=tmp_path,
        resume=True,
    )
    assert result.losses == full_result.losses
    for key, value in full.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_lora_trains_only_adapters(new_tokenizer, ru_lines):
    model = tiny_model(len(new_tokenizer))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(mode="lora", steps=2, batch_size=2, seq_len=32, lora_r=4, lora_alpha=512)
    peft_model, result = train(model, new_tokenizer, ru_lines[:200], cfg)
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    base = peft_model.get_base_model().state_dict()
    for key, value in before.items():
        peft_key = key.replace(".weight", ".base_layer.weight")
        assert torch.equal(value, base.get(key, base.get(peft_key))), key
    from peft.tuners.lora.layer import LoraLayer

    scaling = {m.scaling["default"] for m in peft_model.modules() if isinstance(m, LoraLayer)}
    assert scaling == {512 / 4}
    assert result.mode == "lora" and len(result.losses) == 2


def test_texts_are_packed_with_the_document_separator_not_the_end_of_turn(new_tokenizer):
    """ChatML tokenizers end a turn with <|im_end|> (their eos) and a document with
    <|endoftext|>: training text is joined by the latter."""
    texts = ["Первая строка текста.", "Вторая строка, чуть длиннее первой."] * 10
    packed = pack_texts(new_tokenizer, texts, 16)
    separator = new_tokenizer.convert_tokens_to_ids("<|endoftext|>")
    end_of_turn = new_tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert new_tokenizer.eos_token_id == end_of_turn != separator
    ids = packed.blocks.flatten().tolist()
    assert ids.count(separator) >= 15 and end_of_turn not in ids


def test_the_learning_rate_warms_up_then_decays_by_a_cosine():
    from adaptation.training import learning_rate

    cfg = TrainConfig(steps=101, learning_rate=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    rates = [learning_rate(cfg, step) for step in range(cfg.steps)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert rates[10] == pytest.approx(1e-3)  # the peak, then down
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert rates[-1] == pytest.approx(1e-4)  # min_lr_ratio of the peak at the last step
    assert rates[55] == pytest.approx(1e-4 + 0.9e-3 * 0.5)  # half way: the cosine's middle
    constant = TrainConfig(steps=50, learning_rate=1e-3, schedule="constant")
    assert {learning_rate(constant, s) for s in range(50)} == {1e-3}


def _one_step(new_tokenizer, ru_lines, **fields):
    cfg = TrainConfig(steps=1, batch_size=4, seq_len=32, learning_rate=1e-2, **fields)
    model, result = train(tiny_model(len(new_tokenizer), tied=False), new_tokenizer,
                          ru_lines[:200], cfg)  # fmt: skip
    return model, result


def test_gradient_accumulation_takes_the_same_step_as_one_batch(new_tokenizer, ru_lines):
    whole, whole_result = _one_step(new_tokenizer, ru_lines)
    split, split_result = _one_step(new_tokenizer, ru_lines, grad_accum=4)
    assert split_result.losses[0] == pytest.approx(whole_result.losses[0], rel=1e-5)
    assert split_result.tokens == whole_result.tokens == 4 * 32
    for key, value in whole.state_dict().items():
        torch.testing.assert_close(split.state_dict()[key], value, atol=1e-6, rtol=1e-5)
    untouched = tiny_model(len(new_tokenizer), tied=False).state_dict()["lm_head.weight"]
    assert not torch.allclose(split.state_dict()["lm_head.weight"], untouched)
    with pytest.raises(ValueError, match="grad_accum must be >= 1 and divide batch_size"):
        TrainConfig(batch_size=4, grad_accum=3)


def test_gradient_checkpointing_changes_memory_not_the_step(new_tokenizer, ru_lines):
    plain, _ = _one_step(new_tokenizer, ru_lines, mode="lora", lora_r=4)
    model = tiny_model(len(new_tokenizer), tied=False)
    during = []
    cfg = TrainConfig(steps=1, batch_size=4, seq_len=32, learning_rate=1e-2, mode="lora",
                      lora_r=4, gradient_checkpointing=True)  # fmt: skip
    checked, _ = train(model, new_tokenizer, ru_lines[:200], cfg,
                       on_step=lambda *a: during.append(model.is_activation_checkpointing))  # fmt: skip
    assert during == [True]
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(checked.state_dict()[key], value, atol=1e-6, rtol=1e-5)
    inner = checked.get_base_model()
    assert not inner.is_activation_checkpointing and inner.config.use_cache


def test_gradient_checkpointing_gives_back_the_models_own_cache_setting(new_tokenizer, ru_lines):
    model = tiny_model(len(new_tokenizer), tied=False)
    model.config.use_cache = False  # a model that was saved without its cache
    seen = []
    cfg = TrainConfig(steps=1, batch_size=2, seq_len=32, mode="embeddings",
                      gradient_checkpointing=True)  # fmt: skip
    trained, _ = train(model, new_tokenizer, ru_lines[:100], cfg,
                       on_step=lambda *a: seen.append(model.config.use_cache))  # fmt: skip
    assert seen == [False]  # off while activations are recomputed
    assert trained.config.use_cache is False  # and then its own value, not True
    assert not hasattr(trained, "sbs_use_cache_before_checkpointing")


def test_bf16_autocast_trains_close_to_fp32_with_fp32_weights(new_tokenizer, ru_lines):
    full, full_result = _one_step(new_tokenizer, ru_lines)
    half, half_result = _one_step(new_tokenizer, ru_lines, precision="bf16")
    assert half_result.losses[0] == pytest.approx(full_result.losses[0], rel=0.02)
    assert half_result.losses[0] != full_result.losses[0]  # bf16 really ran
    assert {p.dtype for p in half.parameters()} == {torch.float32}


@pytest.mark.parametrize("tied", [True, False])
def test_lora_can_train_embeddings_and_head_in_full(tied, new_tokenizer, ru_lines):
    model = tiny_model(len(new_tokenizer), tied=tied)
    original = model.get_input_embeddings().weight.detach().clone()
    cfg = TrainConfig(mode="lora", steps=2, batch_size=2, seq_len=32, lora_r=4,
                      learning_rate=1e-2, lora_embeddings=True)  # fmt: skip
    peft_model, _ = train(model, new_tokenizer, ru_lines[:200], cfg)
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("lora_" in n for n in names)
    assert any("embed_tokens.modules_to_save" in n for n in names)
    live = peft_model.get_input_embeddings()
    assert not torch.allclose(live.weight, original)  # trained in full
    assert torch.equal(live.original_module.weight, original)  # the frozen W0 is kept
    head = peft_model.get_output_embeddings()
    if tied:
        assert head.weight is live.weight
    else:
        assert "lm_head.modules_to_save" in " ".join(names)
