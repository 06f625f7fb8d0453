"""One registry of init methods, and config fields that describe themselves: the CLI options
and the config checks are read from them (the web form too: tests/workers/test_adaptation_worker.py)."""

from __future__ import annotations

import argparse

import pytest

from adaptation.__main__ import build_parser, main
from adaptation.pipeline import PipelineConfig
from adaptation.registry import options
from adaptation.vocab import INIT_METHODS, InitMethod, combine_rows, without_target


def _subcommand(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _choices(step: str, flag: str) -> list[str]:
    action = next(a for a in _subcommand(step)._actions if flag in a.option_strings)
    return list(action.choices)


def _zeros(old_rows, spellings, config, refs):
    return combine_rows(old_rows, spellings) * 0, None


@pytest.fixture
def zeros(monkeypatch):
    monkeypatch.setitem(INIT_METHODS, "zeros", InitMethod("zeros", _zeros, "all zeros"))


def test_cli_init_choices_are_the_registry():
    assert _choices("swap-vocab", "--init") == list(INIT_METHODS)
    assert {"mean", "weighted_mean", "random", "projection"} <= set(INIT_METHODS)
    # the pipeline has no target model, so it offers the methods that need none
    assert _choices("pipeline", "--init") == list(INIT_METHODS.names(without_target))
    assert "projection" not in _choices("pipeline", "--init")


def test_a_registered_init_method_appears_in_the_cli_and_passes_the_config_checks(zeros):
    assert "zeros" in _choices("swap-vocab", "--init")
    assert "zeros" in _choices("pipeline", "--init")
    assert PipelineConfig(init="zeros").init == "zeros"
    with pytest.raises(ValueError, match="init must be one of mean, .*zeros"):
        PipelineConfig(init="projection")  # needs a target model the pipeline does not have


def test_pipeline_options_are_the_described_fields():
    flags = {a.dest: a for a in _subcommand("pipeline")._actions}
    for spec in options(PipelineConfig):
        action = flags[spec.name]
        assert action.option_strings[0] == spec.flag and action.default == spec.default
        assert spec.option.label in action.help
    args = build_parser().parse_args(["pipeline", "--model", "m", "--work", "w",
                                      "--vocab-size", "600", "--init", "random", "--no-use-wordnet",
                                      "--merge-grid", "0,1/2,1", "--max-corpus-lines", "2000"])  # fmt: skip
    from adaptation.registry import from_arguments

    config = from_arguments(PipelineConfig, args)
    assert config == PipelineConfig(vocab_size=600, init="random", use_wordnet=False,
                                    merge_grid=(0.0, 0.5, 1.0), max_corpus_lines=2000)  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--vocab-size", "100"], "vocab_size must be at least 300"),
        (["--seq-len", "9000"], "seq_len must be at most 8192"),
        (["--max-corpus-lines", "10"], "max_corpus_lines must be at least 1000"),
    ],
)
def test_pipeline_cli_refuses_values_out_of_the_described_bounds(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        main(["pipeline", "--model", str(tmp_path), "--work", str(tmp_path / "w"), *argv])
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"vocab_size": 299}, "vocab_size must be at least 300"),
        ({"train_steps": -1}, "train_steps must be at least 0"),
        ({"batch_size": "4"}, "batch_size must be a whole number"),
        ({"learning_rate": 2.0}, "learning_rate must be at most 1"),
        ({"tokenizer_type": "wordpiece"}, "tokenizer_type must be one of unigram, bpe"),
        ({"init": "nope"}, "init must be one of mean, weighted_mean, random"),
        ({"use_wordnet": 1}, "use_wordnet must be true or false"),
        ({"merge_grid": ["a"]}, "merge_grid must be a number"),
    ],
)
def test_config_checks_come_from_the_field_metadata(values, message):
    with pytest.raises(ValueError, match=message):
        PipelineConfig.from_dict(values)


def test_a_config_from_a_job_row_round_trips():
    config = PipelineConfig(vocab_size=600, lora_alpha=8, merge_grid=(0.0, 1.0))
    assert PipelineConfig.from_dict(config.to_dict()) == config
    assert PipelineConfig.from_dict({"max_corpus_lines": None, "unknown": 1}) == PipelineConfig()


def test_a_name_registered_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        INIT_METHODS.add("mean", INIT_METHODS["mean"])
    with pytest.raises(ValueError, match="init must be one of mean, weighted_mean"):
        INIT_METHODS.lookup("nope")
