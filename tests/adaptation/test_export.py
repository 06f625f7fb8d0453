"""The adapted model leaves the tool: a folder plain transformers, sentencepiece and the GGUF
writer accept, with a model card written from what the steps recorded, and a work folder that
is emptied of its bulky intermediates once the model is out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from adaptation.export import md, model_card, num, original_dtype
from adaptation.pipeline import PipelineConfig, export_work, folder_bytes, run_pipeline

CONFIG = PipelineConfig(vocab_size=600, train_steps=2, lora_steps=2, batch_size=2, seq_len=32,
                        max_corpus_lines=3000, heldout_lines=20)  # fmt: skip
RU = "Москва — столица России, крупнейший город страны."


@pytest.fixture(scope="module")
def adapted(tiny_model_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("export") / "work"
    result = run_pipeline(tiny_model_dir, work, CONFIG, cache_dir=work.parent / "cache")
    return work, result


def _logits(model_dir: Path, ids: torch.Tensor, dtype=None) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    kwargs = {} if dtype is None else {"dtype": dtype}
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs).eval()
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def test_the_exported_folder_loads_with_plain_transformers_and_gives_the_same_logits(
    adapted, tiny_model_dir, tmp_path
):
    from transformers import AutoTokenizer

    work, result = adapted
    out = result.model_dir
    assert out == work / "model"
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer.model",
            "README.md", "adapter"} <= {p.name for p in out.iterdir()}  # fmt: skip
    assert not list(out.glob("*.bin"))
    config = json.loads((out / "config.json").read_text())
    assert config["dtype"] == original_dtype(tiny_model_dir) == "float32"  # the original's
    assert result.steps["export"]["dtype"] == "float32"
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer(RU, return_tensors="pt")["input_ids"]
    in_memory = _logits(work / "merged", ids)  # the model the pipeline trained, in fp32
    assert torch.equal(_logits(out, ids), in_memory)  # exported in the original's fp32

    bf16 = export_work(work, tmp_path / "bf16", dtype="bfloat16")
    assert bf16.dtype == "bfloat16" and bf16.adapter and bf16.tokenizer_model
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["dtype"] == "bfloat16"
    weights = (tmp_path / "bf16" / "model.safetensors").stat().st_size
    assert weights < 0.6 * (out / "model.safetensors").stat().st_size  # half the bytes
    exported = _logits(tmp_path / "bf16", ids)
    assert torch.allclose(exported, in_memory, atol=0.05, rtol=0.02)
    assert torch.equal(exported, _logits(work / "merged", ids, dtype=torch.bfloat16))


def test_tokenizer_model_is_the_sentencepiece_model_and_encodes_like_the_hf_tokenizer(adapted):
    import sentencepiece as spm
    from transformers import AutoTokenizer

    out = adapted[1].model_dir
    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    hf = AutoTokenizer.from_pretrained(out)
    for text in (RU, "Привет, мир! 2024 год.", "Он сказал: «нет»."):
        assert sp.encode(text) == hf(text, add_special_tokens=False)["input_ids"], text
    assert sp.get_piece_size() == len(hf)


def test_the_model_card_shows_the_recorded_numbers(adapted):
    work, result = adapted
    card = (result.model_dir / "README.md").read_text()
    done = {name: json.loads((work / folder / ".done").read_text())
            for name, folder in (("corpus", "corpus"), ("tokenizer", "tokenizer"),
                                 ("swap", "swapped"), ("train", "trained"), ("merge", "merged"))}  # fmt: skip
    assert card.startswith("---\nlanguage:\n- ru\n") and "base_model:" in card
    assert f"| training lines | {num(done['corpus']['train_lines'])} |" in card
    fert = done["tokenizer"]["fertility"]
    assert f"| new | {num(fert['new']['tokens_per_word'], 3)} |" in card
    assert f"| original | {num(fert['original']['tokens_per_word'], 3)} |" in card
    for name, bpc in done["swap"]["head"]["bpc"].items():
        assert f"{name} head | {num(bpc, 4)} |" in card
    assert num(done["train"]["losses"][-1], 4) in card
    merge = done["merge"]
    assert f"φ = {num(merge['best_phi'], 3)}, chosen by the rule “{merge['select_by']}”" in card
    for score in merge["scores"]:
        assert f"| {num(score['phi'], 3)} | {num(score['bpc'], 4)} |" in card
    if any(s["forgetting_by_category"] for s in merge["scores"]):
        assert "Forgetting by category" in card
    assert "convert_hf_to_gguf.py" in card
    adapter_card = (result.model_dir / "adapter" / "README.md").read_text()
    assert f"| rank r | {num(CONFIG.lora_r)} |" in adapter_card


def test_typed_names_cannot_inject_markup_into_the_card(tmp_path):
    hostile = tmp_path / "<img src=x onerror=alert(1)> [x](javascript:y)"
    records = {"corpus": {"train_lines": 1}}
    card = model_card(records, original=hostile, texts=[Path("<script>alert(1)<\\script>.txt")])
    front, body = card.split("---", 2)[1:]
    assert "<img" not in body and "<script>" not in body and "](javascript" not in body
    assert "&lt;img" in body and "&lt;script&gt;" in body
    assert 'base_model: "<img src=x onerror=alert(1)> [x](javascript:y)"' in front  # YAML string
    assert md("a\nb|c") == "a b\\|c"


def test_the_adapter_is_exported_on_its_own_and_loads_with_peft(adapted):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    work, result = adapted
    adapter = result.model_dir / "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json",
            "README.md"} <= {p.name for p in adapter.iterdir()}  # fmt: skip
    assert (
        json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] is None
    )
    base = AutoModelForCausalLM.from_pretrained(work / "trained" / "model")
    assert isinstance(PeftModel.from_pretrained(base, str(adapter)), PeftModel)


def test_the_gguf_writer_accepts_the_exported_folder(adapted, tmp_path):
    import gguf
    from safetensors.torch import load_file

    out = adapted[1].model_dir
    config = json.loads((out / "config.json").read_text())
    tensors = load_file(str(out / "model.safetensors"))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])
    path = tmp_path / "model.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    vocab = gguf.SentencePieceVocab(out)  # reads tokenizer.model, as llama.cpp's converter does
    tokens, scores, types = zip(*vocab.all_tokens(), strict=True)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(list(tokens))
    writer.add_token_scores(list(scores))
    writer.add_token_types(list(types))
    gguf.SpecialVocab(out, n_vocab=len(tokens)).add_to_gguf(writer)
    expected = {}
    for name, tensor in tensors.items():
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        assert gguf_name is not None, name
        data = tensor.float().numpy()
        writer.add_tensor(gguf_name, data)
        expected[gguf_name] = data.shape
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    reader = gguf.GGUFReader(str(path))
    assert {t.name: tuple(reversed([int(n) for n in t.shape])) for t in reader.tensors} == expected
    assert len(reader.fields["tokenizer.ggml.tokens"].data) == config["vocab_size"]
    arch = reader.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "llama"


def test_a_cleaned_work_folder_shrinks_and_a_rerun_does_nothing(tiny_model_dir, tmp_path):
    config = PipelineConfig(vocab_size=600, train_steps=1, batch_size=2, seq_len=32,
                            max_corpus_lines=2000, heldout_lines=10)  # fmt: skip
    work = tmp_path / "work"
    kept = run_pipeline(tiny_model_dir, work, config, cache_dir=tmp_path / "cache")
    assert (work / "trained" / "model" / "model.safetensors").exists()  # kept without clean
    before = folder_bytes(work)
    result = run_pipeline(tiny_model_dir, work, config, cache_dir=tmp_path / "cache", clean=True)
    assert result.ran == [] and result.model_dir == kept.model_dir
    sizes = result.steps["export"]["work_bytes"]
    assert sizes["before"] == before and sizes["after"] < before / 2
    assert abs(folder_bytes(work) - sizes["after"]) < 4096  # and the records written since
    assert (
        not (work / "trained" / "model").exists()
        and not (work / "swapped" / "config.json").exists()
    )
    assert (work / "trained" / ".done").exists() and (
        work / "tokenizer" / "sentencepiece.model"
    ).exists()
    print(f"work folder bytes before/after cleaning: {sizes}")

    again = run_pipeline(tiny_model_dir, work, config, cache_dir=tmp_path / "cache", clean=True)
    assert again.ran == [] and again.steps == result.steps  # a redelivered job does nothing
    changed = run_pipeline(tiny_model_dir, work, PipelineConfig(**{**config.to_dict(), "train_steps": 2}),
                           cache_dir=tmp_path / "cache")  # fmt: skip
    assert changed.ran == ["swap", "train"]  # the swapped model was cleaned: made again
