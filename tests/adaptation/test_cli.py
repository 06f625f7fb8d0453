import json

import pytest
import torch

from adaptation.__main__ import build_parser, main

STEPS = ["corpus", "train-tokenizer", "swap-vocab", "train", "merge-sweep", "fertility", "pipeline",
         "score", "export-benchmark"]  # fmt: skip


@pytest.mark.parametrize("step", STEPS)
def test_help(step, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([step, "--help"])
    assert exit_info.value.code == 0
    assert step in capsys.readouterr().out


def _run(capsys, *argv):
    assert main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_tiny_end_to_end(tmp_path, capsys, ru_lines, old_model_dir):
    text = tmp_path / "train.txt"
    text.write_text("\n".join(ru_lines[:600]), encoding="utf-8")
    heldout = tmp_path / "heldout.txt"
    heldout.write_text("\n".join(ru_lines[600:610]), encoding="utf-8")
    cache = ["--cache-dir", tmp_path / "cache"]

    tok = _run(
        capsys,
        "train-tokenizer",
        "--text",
        text,
        "--original",
        old_model_dir,
        "--vocab-size",
        500,
        "--out",
        tmp_path / "tok",
        *cache,
    )
    assert tok["vocab_size"] == 500
    swap = _run(
        capsys,
        "swap-vocab",
        "--model",
        old_model_dir,
        "--tokenizer",
        tmp_path / "tok",
        "--out",
        tmp_path / "swapped",
        *cache,
    )
    assert swap["new_vocab"] == 500 and swap["special_mapped"] == 3
    emb = _run(
        capsys,
        "train",
        "--model",
        tmp_path / "swapped",
        "--text",
        text,
        "--steps",
        2,
        "--batch-size",
        2,
        "--seq-len",
        32,
        "--out",
        tmp_path / "emb",
        *cache,
    )
    assert (
        emb["mode"] == "embeddings" and (tmp_path / "emb" / "model" / "model.safetensors").exists()
    )
    # LEP onto a model that is its own base: the donor's trained rows come through unchanged
    lep = _run(capsys, "swap-vocab", "--model", old_model_dir, "--base", old_model_dir,
               "--target", tmp_path / "emb" / "model", "--init", "lep", "--tokenizer",
               tmp_path / "tok", "--out", tmp_path / "lep", *cache)  # fmt: skip
    assert lep["init"] == "lep" and lep["projection_residual"]["embeddings"] < 1e-3
    from safetensors.torch import load_file

    donor = load_file(tmp_path / "emb" / "model" / "model.safetensors")
    carried = load_file(tmp_path / "lep" / "model.safetensors")
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        torch.testing.assert_close(carried[key][3:], donor[key][3:], atol=1e-3, rtol=1e-3)
    lora = _run(
        capsys,
        "train",
        "--model",
        tmp_path / "emb" / "model",
        "--text",
        text,
        "--mode",
        "lora",
        "--steps",
        2,
        "--batch-size",
        2,
        "--seq-len",
        32,
        "--lora-alpha",
        512,
        "--out",
        tmp_path / "lora",
        *cache,
    )
    assert (tmp_path / "lora" / "adapter" / "adapter_model.safetensors").exists()
    assert lora["chars_per_second"] > 0
    sweep = _run(
        capsys,
        "merge-sweep",
        "--adapter",
        tmp_path / "lora" / "adapter",
        "--heldout",
        heldout,
        "--grid",
        "0,1/2,1",
        "--out",
        tmp_path / "merged",
        *cache,
    )
    assert [s["phi"] for s in sweep["scores"]] == [0.0, 0.5, 1.0]
    assert (tmp_path / "merged" / "model.safetensors").exists()
    assert sweep["select_by"] == "tradeoff" and sweep["tolerance"] == 0.02
    assert "bpc:en_general" in sweep["scores"][0]["forgetting_by_category"]
    assert (tmp_path / "merged" / "merge_sweep.svg").read_text().startswith("<?xml")
    fert = _run(
        capsys,
        "fertility",
        "--tokenizer",
        old_model_dir,
        "--tokenizer",
        tmp_path / "tok",
        "--text",
        heldout,
        *cache,
    )
    assert set(fert) >= {str(old_model_dir), str(tmp_path / "tok")}
    assert "интеллект" in fert[str(tmp_path / "tok")]["probes"]


def test_pipeline_runs_the_recipe_from_the_cli_and_a_rerun_resumes(
    tmp_path, capsys, ru_lines, old_model_dir
):
    text = tmp_path / "train.txt"
    text.write_text("\n".join(ru_lines[:600]), encoding="utf-8")
    argv = ["pipeline", "--model", old_model_dir, "--work", tmp_path / "work", "--text", text,
            "--no-use-wordnet", "--vocab-size", 500, "--train-steps", 1, "--batch-size", 2,
            "--seq-len", 32, "--cache-dir", tmp_path / "cache"]  # fmt: skip
    first = _run(capsys, *argv)
    assert first["ran"] == ["corpus", "tokenizer", "swap", "train"]
    # the result is the exported folder (adaptation.export): model, tokenizer.model, card
    assert first["model_dir"] == str(tmp_path / "work" / "model")
    assert {"config.json", "tokenizer.json", "tokenizer.model", "README.md"} <= {
        f.name for f in (tmp_path / "work" / "model").iterdir()
    }
    tokenizer = first["steps"]["tokenizer"]
    assert (tokenizer["vocab_size"], tokenizer["type"]) == (500, "unigram")
    fertility = tokenizer["fertility"]  # on the shipped prose, both tokenizers
    assert fertility["text"] == "ru_heldout_prose.txt"
    assert fertility["new"]["words"] == fertility["original"]["words"] > 500
    assert "dedup" in first["steps"]["corpus"]
    assert _run(capsys, *argv)["ran"] == []
    text.write_text("\n".join(ru_lines[:700]), encoding="utf-8")  # other text: all redone
    assert _run(capsys, *argv)["ran"] == ["corpus", "tokenizer", "swap", "train"]


def test_score_prints_acc_and_acc_norm_per_category(tmp_path, capsys, tiny_model_dir):
    from tests.conftest import ROOT

    argv = [
        "score", "--model", tiny_model_dir, "--benchmark",
        ROOT / "data" / "benchmark_general_ru.jsonl", "--per-category", 2, "--device", "cpu",
        "--format", "lettered", "--cache-dir", tmp_path / "cache",
    ]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    [(name, result)] = out["benchmarks"].items()
    assert (
        name.endswith("benchmark_general_ru.jsonl") and out["config"]["prompt_format"] == "lettered"
    )
    assert result["n"] == 8 and set(result["categories"]) == {
        "english", "general_knowledge", "reasoning_over_text", "text_understanding"
    }  # fmt: skip
    assert all(c["n"] == 2 for c in result["categories"].values())
    assert 0 <= result["acc"] <= 1 and result["acc"] == result["acc_norm"]  # letters: 1 char each
    assert result["baselines"]["chance"] == 0.25
    assert "acc_norm" in captured.err and "general_knowledge" in captured.err


def test_export_benchmark_writes_a_shipped_set_as_jsonl(tmp_path, capsys):
    from adaptation.benchmarks import read_items

    out = _run(
        capsys, "export-benchmark", "--shipped", "rl-wsd-labeled", "--out", tmp_path / "w.jsonl"
    )
    assert out["license"] == "MIT" and out["items"] == len(read_items(tmp_path / "w.jsonl")) > 9000


@pytest.mark.parametrize("action", ["calibrate", "evaluate"])
def test_ensemble_help(action, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["ensemble", action, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"ensemble {action}" in out
    assert ("--top-k" in out) and ("--out" in out if action == "calibrate" else "--base" in out)


def test_ensemble_calibrate_saves_a_model_folder_and_evaluate_scores_it(
    tiny_model_dir, tmp_path, capsys
):
    from adaptation.ensemble import read_manifest
    from adaptation.loading import load_any as load_model

    out, cache = tmp_path / "udlm", ["--cache-dir", tmp_path / "cache"]
    calibrate = ["ensemble", "calibrate", "--model", tiny_model_dir, "--out", out,
                 "--tasks", "arithmetic,wsd,case", "--steps", 2, "--batch-size", 4,
                 "--calibration-items", 2, "--top-k", 2, "--temperature", 0.5, *cache]  # fmt: skip
    made = _run(capsys, *calibrate)
    assert made["action"] == "calibrate" and made["out"] == str(out)
    assert made["tasks"] == ["arithmetic", "wsd", "case"]
    assert made["gate"] == {"top_k": 2, "granularity": "sequence", "temperature": 0.5,
                            "aggregation": "mean"}  # fmt: skip
    assert made["calibration_items"] == {"arithmetic": 2, "wsd": 2, "case": 2}
    assert set(made["train_losses"]) == {"arithmetic", "wsd", "case"}
    assert read_manifest(out)["evaluation"] is None
    assert load_model(out, cache_dir=tmp_path / "cache", device="cpu").model.sbs_ensemble

    evaluate = ["ensemble", "evaluate", "--ensemble", out, "--search-candidates", 2,
                "--max-test-items", 4, *cache]  # fmt: skip
    assert main([str(a) for a in evaluate]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["step"] == "ensemble" and summary["action"] == "evaluate"
    methods = {"base model", "adapter wsd", "static uniform", "static searched (dev)",
               "UDLM top-1", "UDLM top-2", "oracle (best adapter per item)"}  # fmt: skip
    assert methods <= set(summary["scores"])
    for method, per_task in summary["correct"].items():
        assert set(per_task) == {"arithmetic", "wsd", "case"}
        assert all(0 <= k <= 4 for k in per_task.values()), method
    oracle, single = summary["correct"]["oracle (best adapter per item)"], summary["correct"]
    assert all(oracle[t] >= single[f"adapter {a}"][t] for t in oracle for a in oracle)
    assert summary["test_items"] == {"arithmetic": 4, "wsd": 4, "case": 4}
    assert sum(summary["static_weights"].values()) == pytest.approx(1.0)
    table = captured.err[captured.err.index("| task") :]  # the table on stderr
    assert "| wsd " in table and "UDLM top-2" in table and "LoRAHub-style searched" in table
    assert read_manifest(out)["evaluation"]["scores"] == summary["scores"]

    assert main([str(a) for a in calibrate]) == 0  # same settings: the adapters are reused
    assert "reusing the adapters" in capsys.readouterr().err
