"""The whole recipe on a tiny model: corpus -> tokenizer -> swap -> train -> LoRA -> merge."""

from __future__ import annotations

import json

from adaptation.modelfiles import inspect_model_path
from adaptation.pipeline import PipelineConfig, run_pipeline

CONFIG = PipelineConfig(vocab_size=600, train_steps=2, lora_steps=2, batch_size=2, seq_len=32,
                        max_corpus_lines=3000, heldout_lines=20)  # fmt: skip


def test_pipeline_produces_a_registrable_russian_model_and_resumes(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    seen: list[str] = []
    result = run_pipeline(tiny_model_dir, tmp_path / "work", CONFIG, cache_dir=tmp_path / "cache",
                          on_progress=lambda step, fraction, message: seen.append(step))  # fmt: skip
    assert [s for s in ("corpus", "tokenizer", "swap", "train", "lora", "merge", "done") if s in seen] == [
        "corpus", "tokenizer", "swap", "train", "lora", "merge", "done"]  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(result.model_dir)
    assert len(tokenizer) == 600
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.chat_template  # kept from the original
    config = json.loads((result.model_dir / "config.json").read_text())
    assert config["vocab_size"] == 600
    assert result.steps["merge"]["best_phi"] in CONFIG.merge_grid
    inspection = inspect_model_path(result.model_dir)  # the registration checks accept it
    assert inspection.kind == "hf_folder"

    # A rerun (a redelivered job) finds every step done and does no work.
    again: list[str] = []
    rerun = run_pipeline(tiny_model_dir, tmp_path / "work", CONFIG, cache_dir=tmp_path / "cache",
                         on_progress=lambda step, fraction, message: again.append(f"{step}:{fraction}"))  # fmt: skip
    assert rerun.model_dir == result.model_dir
    assert not any(s.startswith(("train:0.", "lora:0.")) for s in again)
