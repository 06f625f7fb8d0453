"""A batch that runs out of device memory is generated again in halves."""

from __future__ import annotations

import pytest
import torch

from adaptation.generate import GenerationSettings, generate_answers
from adaptation.modelio import load_model


def test_out_of_memory_splits_the_batch_and_keeps_every_answer(
    tiny_model_dir, tmp_path, monkeypatch
):
    loaded = load_model(tiny_model_dir, cache_dir=tmp_path, device="cpu")
    real = loaded.model.generate
    sizes: list[int] = []

    def generate(**kw):  # a device with room for two sequences at a time
        sizes.append(kw["input_ids"].shape[0])
        if kw["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(**kw)

    monkeypatch.setattr(loaded.model, "generate", generate)
    settings = GenerationSettings(max_new_tokens=3, batch_size=8)
    prompts = [f"Вопрос {i}?" for i in range(8)]
    batches: list[int] = []
    answers = list(
        generate_answers(loaded, prompts, settings, on_batch=lambda b: batches.append(len(b)))
    )
    assert sorted(a.index for a in answers) == list(range(8))
    assert sizes[:3] == [8, 4, 2] and batches == [2, 2, 2, 2]
    assert all(a.batch_size == 2 for a in answers)


def test_out_of_memory_at_batch_size_one_propagates(tiny_model_dir, tmp_path, monkeypatch):
    loaded = load_model(tiny_model_dir, cache_dir=tmp_path, device="cpu")

    def generate(**kw):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(loaded.model, "generate", generate)
    with pytest.raises(torch.OutOfMemoryError):
        list(generate_answers(loaded, ["Вопрос?"], GenerationSettings(max_new_tokens=2)))
