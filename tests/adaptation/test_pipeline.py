"""The whole recipe on a tiny model: corpus -> tokenizer -> swap -> train -> LoRA -> merge,
and the one resume rule every step goes through."""

from __future__ import annotations

import json
import shutil

import pytest

from adaptation.modelfiles import inspect_model_path
from adaptation.pipeline import STEPS, PipelineConfig, Step, run_pipeline

CONFIG = PipelineConfig(vocab_size=600, train_steps=2, lora_steps=2, batch_size=2, seq_len=32,
                        max_corpus_lines=3000, heldout_lines=20)  # fmt: skip
ALL = ["corpus", "tokenizer", "swap", "train", "lora", "merge"]


def test_pipeline_produces_a_registrable_russian_model_and_resumes(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    def run(progress: list[str]):
        return run_pipeline(tiny_model_dir, tmp_path / "work", CONFIG, cache_dir=tmp_path / "cache",
                            on_progress=lambda step, fraction, message: progress.append(f"{step}:{fraction}"))  # fmt: skip

    seen: list[str] = []
    result = run(seen)
    assert result.ran == ALL
    assert list(dict.fromkeys(s.split(":")[0] for s in seen)) == [*ALL, "done"]
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
    rerun = run(again)
    assert rerun.model_dir == result.model_dir and rerun.ran == []
    assert rerun.steps == result.steps
    assert not any(s.startswith(("train:0.", "lora:0.")) for s in again)

    # Stopped after the embedding training: the rerun starts at LoRA.
    (tmp_path / "work" / "lora" / ".done").unlink()
    again = []
    assert run(again).ran == ["lora", "merge"]
    assert not any(s.startswith("train:0.") for s in again)

    # Stopped after the last checkpoint of the embedding training, before its model was saved:
    # it continues from the checkpoint (no training step is repeated), then the later steps.
    shutil.rmtree(tmp_path / "work" / "trained" / "model")
    again = []
    resumed = run(again)
    assert resumed.ran == ["train", "lora", "merge"]
    assert "train:0.5" not in again  # step 1 of 2 was not trained again
    assert resumed.steps["train"]["losses"] == result.steps["train"]["losses"]


def _config(**values) -> PipelineConfig:
    return PipelineConfig(**{"vocab_size": 600, **values})


class FakeSteps:
    """Three steps that record their calls; the last one is resumable and can be made to stop
    half-way (a killed worker), leaving a checkpoint behind."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.stop_in_train = False

    def step(self, name: str, reads: tuple[str, ...], *, resumable: bool = False) -> Step:
        def run(ctx, folder, report):
            self.calls.append(name)
            resumed = (folder / "checkpoint").exists()
            (folder / "checkpoint").write_text("half")
            if name == "train" and self.stop_in_train:
                raise KeyboardInterrupt
            (folder / "out.txt").write_text(name)
            return {"resumed": resumed}

        return Step(name, name, run, ("out.txt",), reads=reads, resumable=resumable)

    def steps(self) -> list[Step]:
        return [self.step("corpus", ("seed",)), self.step("tokenizer", ("vocab_size",)),
                self.step("train", ("train_steps",), resumable=True)]  # fmt: skip

    def run(self, work, config: PipelineConfig):
        self.calls = []
        return run_pipeline(work / "model", work, config, cache_dir=work / "cache",
                            steps=self.steps())  # fmt: skip


def test_a_step_is_skipped_only_when_its_outputs_exist_and_its_inputs_are_unchanged(tmp_path):
    fake = FakeSteps()
    assert fake.run(tmp_path, _config()).ran == ["corpus", "tokenizer", "train"]
    assert fake.run(tmp_path, _config()).ran == [] and fake.calls == []
    # a changed input redoes its step and every later one, not the earlier ones
    assert fake.run(tmp_path, _config(vocab_size=700)).ran == ["tokenizer", "train"]
    assert fake.run(tmp_path, _config(vocab_size=700, train_steps=3)).ran == ["train"]
    # a lost output redoes its step (and the later ones) although its marker is there
    (tmp_path / "corpus" / "out.txt").unlink()
    result = fake.run(tmp_path, _config(vocab_size=700, train_steps=3))
    assert result.ran == ["corpus", "tokenizer", "train"]
    assert result.steps["train"] == {"resumed": False}  # redone from scratch after its input


def test_an_interrupted_resumable_step_continues_from_its_checkpoint_unless_inputs_changed(
    tmp_path,
):
    fake = FakeSteps()
    fake.stop_in_train = True
    with pytest.raises(KeyboardInterrupt):
        fake.run(tmp_path, _config())
    assert not (tmp_path / "train" / ".done").exists()
    fake.stop_in_train = False
    result = fake.run(tmp_path, _config())
    assert result.ran == ["train"] and result.steps["train"] == {"resumed": True}

    fake.stop_in_train = True
    with pytest.raises(KeyboardInterrupt):
        fake.run(tmp_path, _config(train_steps=5))
    fake.stop_in_train = False
    other = fake.run(tmp_path, _config(train_steps=6))  # not the run the checkpoint belongs to
    assert other.ran == ["train"] and other.steps["train"] == {"resumed": False}


def test_the_recipe_steps_read_only_known_inputs():
    known = {*PipelineConfig.__dataclass_fields__, "model", "texts"}
    assert [s.name for s in STEPS] == ALL
    for step in STEPS:
        assert set(step.reads) <= known, step.name
