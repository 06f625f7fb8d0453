"""UDLM's training-free gate and the adapter ensemble, on tiny tensors and a tiny Llama."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from adaptation.ensemble import (
    AdapterEnsemble,
    Gate,
    GateConfig,
    StaticWeights,
    attached_ensemble,
    calibrate_gate,
    calibrate_on_items,
    gate_rows,
    gate_weights,
    load_ensemble,
    lora_layers,
    read_manifest,
    save_ensemble,
    sequence_last,
    sequence_mean,
    uniform,
)
from adaptation.tasks import adapters_off, load_tasks, score_batch

TASKS = ("alpha", "beta", "gamma")
# Each task's sequences repeat one token: every position of a sequence then has the same
# hidden state in every layer, so the tasks are as well separated as inputs can be.
TOKENS = {"alpha": 100, "beta": 2000, "gamma": 30000}


def test_gate_equals_a_hand_computation_on_tiny_tensors():
    # Task A: two sequences, the second with one padded position.
    a = torch.tensor([[[1.0, 0.0], [3.0, 0.0]], [[0.0, 2.0], [9.0, 9.0]]])
    a_mask = torch.tensor([[1, 1], [1, 0]])
    b = torch.tensor([[[0.0, -4.0], [0.0, -2.0]]])
    means_a = sequence_mean(a, a_mask)
    assert means_a.tolist() == [[2.0, 0.0], [0.0, 2.0]]  # AGG_seq, padding excluded
    rows = gate_rows([means_a, sequence_mean(b)])
    # AGG_batch: A -> (1, 1), B -> (0, -3); then unit length.
    s = 1 / math.sqrt(2)
    assert torch.allclose(rows, torch.tensor([[s, s], [0.0, -1.0]]))

    h = torch.tensor([2.0, 1.0])
    logits = [3 * s, -1.0]  # h · W_G^i
    z = math.exp(logits[0]) + math.exp(logits[1])
    expected = [math.exp(logits[0]) / z, math.exp(logits[1]) / z]
    assert torch.allclose(gate_weights(h, rows), torch.tensor(expected))
    assert gate_weights(h, rows, top_k=1).tolist() == [1.0, 0.0]
    assert gate_weights(torch.tensor([0.0, 5.0]), rows, top_k=1).tolist() == [1.0, 0.0]
    assert gate_weights(torch.tensor([0.0, -5.0]), rows, top_k=1).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("top_k", [0, 1, 2, 3, 4])
def test_gate_weights_are_a_softmax_over_the_top_k_that_sums_to_one(top_k):
    torch.manual_seed(0)
    h = torch.randn(5, 7, 16)
    rows = gate_rows([torch.randn(3, 16) for _ in range(4)])
    g = gate_weights(h, rows, top_k)
    assert g.shape == (5, 7, 4)
    assert torch.allclose(g.sum(-1), torch.ones(5, 7))
    kept = (g > 0).sum(-1)
    assert (kept == (top_k if 0 < top_k < 4 else 4)).all()
    # The kept adapters are the ones with the largest h · W_G.
    logits = h @ rows.T
    if 0 < top_k < 4:
        smallest_kept = logits.masked_fill(g == 0, math.inf).min(-1).values
        largest_dropped = logits.masked_fill(g > 0, -math.inf).max(-1).values
        assert (smallest_kept >= largest_dropped).all()


def test_temperature_divides_the_kept_logits_before_the_softmax():
    torch.manual_seed(1)
    h = torch.randn(4, 8)
    rows = gate_rows([torch.randn(2, 8) for _ in range(3)])
    logits = h @ rows.T
    for temperature in (0.25, 1.0, 3.0):
        expected = torch.softmax(logits / temperature, dim=-1)
        got = gate_weights(h, rows, temperature=temperature)
        assert torch.allclose(got, expected, atol=1e-6)
        # top-2: the smallest logit of each row is dropped, the rest is softmax(l / T)
        kept = logits.masked_fill(logits == logits.min(-1, keepdim=True).values, -math.inf)
        expected = torch.softmax(kept / temperature, dim=-1)
        assert torch.allclose(gate_weights(h, rows, 2, temperature), expected, atol=1e-6)
    assert torch.allclose(gate_weights(h, rows), gate_weights(h, rows, temperature=1.0))
    sharp, flat = gate_weights(h, rows, temperature=0.01), gate_weights(h, rows, temperature=1e4)
    assert torch.equal(sharp.argmax(-1), logits.argmax(-1)) and (sharp.max(-1).values > 0.99).all()
    assert torch.allclose(flat, torch.full_like(flat, 1 / 3), atol=1e-3)
    with pytest.raises(ValueError, match="temperature"):
        gate_weights(h, rows, temperature=0)
    for bad in ({"temperature": 0.0}, {"temperature": -1.0}, {"aggregation": "max"},
                {"granularity": "word"}, {"top_k": -1}):  # fmt: skip
        with pytest.raises(ValueError):
            GateConfig(**bad)


def test_top_k_keeps_exactly_k_and_zeroes_the_rest_at_any_temperature():
    torch.manual_seed(2)
    h = torch.randn(6, 5, 16)
    rows = gate_rows([torch.randn(3, 16) for _ in range(5)])
    for temperature in (0.1, 1.0, 10.0):
        g = gate_weights(h, rows, top_k=2, temperature=temperature)
        assert ((g == 0).sum(-1) == 3).all()  # exactly zero, not merely small
        assert torch.allclose(g.sum(-1), torch.ones(6, 5))


def test_last_token_aggregation_reads_the_last_real_token_of_left_or_right_padding():
    x = torch.arange(24, dtype=torch.float32).reshape(2, 4, 3)
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])
    assert sequence_last(x, right).tolist() == [x[0, 1].tolist(), x[1, 3].tolist()]
    assert sequence_last(x, left).tolist() == [x[0, 3].tolist(), x[1, 3].tolist()]
    assert torch.equal(sequence_last(x), x[:, -1])


def test_calibration_with_the_last_token_takes_each_prompts_last_layer_input(tiny_model_dir):
    model = _peft_model(tiny_model_dir)
    ids = torch.tensor([[1, 100, 200, 300], [1, 7, 8, 2]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])  # the second prompt ends at position 2
    gate = calibrate_gate(model, {"alpha": [(ids, mask)]}, GateConfig(aggregation="last"))
    seen = []
    name, layer = next(iter(lora_layers(model).items()))
    handle = layer.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with adapters_off(model):
        _logits(model, ids, mask)
    handle.remove()
    row = (seen[0][0, 3] + seen[0][1, 2]) / 2
    assert torch.allclose(gate.rows[name][0], row / row.norm(), atol=1e-5)
    mean = calibrate_gate(model, {"alpha": [(ids, mask)]})
    assert not torch.allclose(mean.rows[name], gate.rows[name], atol=1e-3)


def _peft_model(tiny_model_dir, tasks=TASKS, seed=0):
    """A tiny Llama with one random, non-zero LoRA adapter per task (peft)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj", "up_proj", "down_proj"],
        init_lora_weights=False,  # B != 0, so every adapter changes the model
    )
    torch.manual_seed(seed)
    model = get_peft_model(base, config, adapter_name=tasks[0])
    for task in tasks[1:]:
        model.add_adapter(task, config)
    with torch.no_grad():  # deltas small beside W0, as trained adapters' are
        for layer in lora_layers(model).values():
            for task in tasks:
                layer.lora_B[task].weight.mul_(0.1)
    return model.eval()


def _repeated(task, batch=2, length=6):
    ids = torch.full((batch, length), TOKENS[task])
    return ids, torch.ones_like(ids)


def _logits(model, ids, mask):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits


def test_calibrated_rows_are_the_normalised_mean_of_the_base_layer_inputs(
    tiny_model_dir, tokenizer
):
    from transformers import AutoModelForCausalLM

    from adaptation.tasks import prompt_ids

    model = _peft_model(tiny_model_dir)
    splits = load_tasks(("translate", "sentiment", "case"))
    samples = {t: list(s.train[:3]) for t, s in splits.items()}
    # batch_size 2: right padding inside a batch, and more than one batch per task
    gate = calibrate_on_items(model, tokenizer, samples, batch_size=2)
    assert gate.tasks == ("translate", "sentiment", "case")
    assert set(gate.rows) == set(lora_layers(model))

    # By hand, on a plain transformers model: one prompt at a time, no padding, no peft.
    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    seen = []
    layer = plain.model.layers[1].mlp.down_proj
    handle = layer.register_forward_hook(lambda m, args, out: seen.append(args[0][0]))
    expected = []
    for task in gate.tasks:
        seen.clear()
        for item in samples[task]:
            plain(input_ids=torch.tensor([prompt_ids(tokenizer, item)]))
        per_seq = torch.stack([x.mean(dim=0) for x in seen])
        row = per_seq.mean(dim=0)
        expected.append(row / row.norm())
    handle.remove()
    got = gate.rows["base_model.model.model.layers.1.mlp.down_proj"]
    assert torch.allclose(got, torch.stack(expected), atol=1e-5)
    assert torch.allclose(got.norm(dim=-1), torch.ones(3))


def test_with_one_adapter_the_ensemble_equals_that_adapter(tiny_model_dir):
    model = _peft_model(tiny_model_dir, tasks=("solo",))
    ids, mask = _repeated("alpha")
    ids[1, :3] = 7  # a second, different sequence
    model.set_adapter("solo")
    expected = _logits(model, ids, mask)
    with adapters_off(model):
        base = _logits(model, ids, mask)
    assert not torch.allclose(expected, base, atol=1e-3)  # the adapter matters

    gate = calibrate_gate(model, {"solo": [_repeated("beta")]})
    ensemble = AdapterEnsemble(model, ("solo",))
    for router in (
        gate,
        gate.with_config(GateConfig(1, "token")),
        StaticWeights(("solo",), (1.0,)),
    ):
        with ensemble.routing(router, attention_mask=mask):
            got = _logits(model, ids, mask)
        assert torch.allclose(got, expected, atol=1e-5)
    ensemble.remove()
    assert torch.allclose(_logits(model, ids, mask), expected)  # hooks gone, peft as before


@pytest.mark.parametrize(
    ("granularity", "aggregation"), [("token", "mean"), ("sequence", "mean"), ("sequence", "last")]
)
def test_top1_routes_well_separated_tasks_to_their_own_adapter(
    tiny_model_dir, granularity, aggregation
):
    model = _peft_model(tiny_model_dir)
    config = GateConfig(1, granularity, aggregation=aggregation)
    gate = calibrate_gate(model, {t: [_repeated(t)] for t in TASKS}, config)
    ensemble = AdapterEnsemble(model, TASKS)
    for index, task in enumerate(TASKS):
        ids, mask = _repeated(task, batch=3, length=9)  # not the calibration shapes
        model.set_adapter(task)
        expected = _logits(model, ids, mask)
        with ensemble.routing(gate, attention_mask=mask, trace=True):
            got = _logits(model, ids, mask)
            weights = ensemble.traced_weights()
        assert (weights[..., index] == 1.0).all(), f"{task} routed elsewhere"
        assert torch.allclose(got, expected, atol=1e-5)
        # and it differs from every other adapter
        for other in TASKS:
            if other != task:
                model.set_adapter(other)
                assert not torch.allclose(_logits(model, ids, mask), expected, atol=1e-3)
    ensemble.remove()


def test_a_one_hot_gate_reproduces_that_adapter_exactly(tiny_model_dir):
    model = _peft_model(tiny_model_dir)
    gate = calibrate_gate(model, {t: [_repeated(t)] for t in TASKS}, GateConfig(top_k=1))
    ensemble = AdapterEnsemble(model, TASKS)
    for index, task in enumerate(TASKS):
        ids, mask = _repeated(task, batch=2, length=7)
        model.set_adapter(task)
        expected = _logits(model, ids, mask)
        one_hot = StaticWeights(TASKS, tuple(float(k == index) for k in range(len(TASKS))))
        for router in (one_hot, gate):  # the gate's top-1 on its own task is one-hot too
            with ensemble.routing(router, attention_mask=mask):
                assert torch.equal(_logits(model, ids, mask), expected)
    ensemble.remove()


def test_adapters_outside_the_top_k_are_not_even_computed(tiny_model_dir):
    """Weight exactly 0: NaN in a dropped adapter's matrices does not reach the output."""
    model = _peft_model(tiny_model_dir)
    gate = calibrate_gate(model, {t: [_repeated(t)] for t in TASKS}, GateConfig(top_k=1))
    ids, mask = _repeated("alpha", batch=2, length=7)
    model.set_adapter("alpha")
    expected = _logits(model, ids, mask)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B["beta"].weight.fill_(math.nan)
            layer.lora_B["gamma"].weight.fill_(math.inf)
    ensemble = AdapterEnsemble(model, TASKS)
    with ensemble.routing(gate, attention_mask=mask, trace=True):
        got = _logits(model, ids, mask)
        weights = ensemble.traced_weights()
    ensemble.remove()
    assert torch.equal(got, expected)
    assert (weights[..., 1:] == 0).all()


def test_with_all_gate_weight_off_or_no_adapters_the_model_is_the_base(tiny_model_dir):
    model = _peft_model(tiny_model_dir)
    ids = torch.tensor([[1, 5, 900, 17, 17, 4000], [1, 12, 13, 14, 15, 16]])
    mask = torch.ones_like(ids)
    with adapters_off(model):
        base = _logits(model, ids, mask)
    ensemble = AdapterEnsemble(model, TASKS)
    with ensemble.routing(StaticWeights(TASKS, (0.0, 0.0, 0.0)), attention_mask=mask):
        assert torch.equal(_logits(model, ids, mask), base)
    ensemble.remove()
    empty = AdapterEnsemble(model, ())
    with empty.routing(StaticWeights((), ()), attention_mask=mask):
        assert torch.equal(_logits(model, ids, mask), base)
    empty.remove()


def test_static_weights_equal_the_weighted_sum_of_peft_delta_weights(tiny_model_dir):
    model = _peft_model(tiny_model_dir)
    ids = torch.tensor([[1, 5, 900, 17, 17, 4000], [1, 12, 13, 14, 15, 16]])
    mask = torch.ones_like(ids)
    weights = (0.5, 0.2, 0.3)
    ensemble = AdapterEnsemble(model, TASKS)
    with ensemble.routing(StaticWeights(TASKS, weights), attention_mask=mask):
        got = _logits(model, ids, mask)
    ensemble.remove()

    merged = copy.deepcopy(model)
    with torch.no_grad():
        for layer in lora_layers(merged).values():
            delta = sum(w * layer.get_delta_weight(t) for w, t in zip(weights, TASKS, strict=True))
            layer.base_layer.weight += delta
    with adapters_off(merged):
        expected = _logits(merged, ids, mask)
    assert torch.allclose(got, expected, atol=1e-4)
    assert uniform(TASKS).values == pytest.approx((1 / 3, 1 / 3, 1 / 3))


def test_sequence_routing_under_generate_equals_teacher_forcing(tiny_model_dir):
    """The running means carry over KV-cache steps and skip left padding."""
    model = _peft_model(tiny_model_dir)
    gate = calibrate_gate(model, {t: [_repeated(t)] for t in TASKS})
    ensemble = AdapterEnsemble(model, TASKS)
    prompt = torch.tensor([[0, 0, 1, 100, 100, 7], [1, 2000, 2000, 2000, 30000, 5]])
    prompt_mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    with ensemble.routing(gate, attention_mask=prompt_mask):
        out = model.generate(
            input_ids=prompt,
            attention_mask=prompt_mask,
            max_new_tokens=5,
            min_new_tokens=5,
            do_sample=False,
            pad_token_id=0,
        )
    new = out[:, prompt.shape[1] :]
    mask = torch.cat([prompt_mask, torch.ones_like(new)], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    with ensemble.routing(gate, attention_mask=mask), torch.no_grad():
        logits = model(input_ids=out, attention_mask=mask, position_ids=positions).logits
    labels = torch.full_like(out, -100)
    labels[:, prompt.shape[1] :] = new
    correct, _ = score_batch(logits, labels)
    assert correct == [True, True]
    # The routing is not a constant: the two rows get different weights.
    with ensemble.routing(gate, attention_mask=mask, trace=True), torch.no_grad():
        model(input_ids=out, attention_mask=mask, position_ids=positions)
        traced = ensemble.traced_weights()
    assert not torch.allclose(traced[0, -1], traced[1, -1], atol=1e-3)
    ensemble.remove()


def test_the_gate_is_never_trained(tiny_model_dir):
    model = _peft_model(tiny_model_dir)
    gate = calibrate_gate(model, {t: [_repeated(t)] for t in TASKS})
    before = {k: v.clone() for k, v in gate.rows.items()}
    assert not any(v.requires_grad for v in gate.rows.values())
    params = {id(p) for p in model.parameters()}
    assert not any(id(v) in params for v in gate.rows.values())

    for layer in lora_layers(model).values():
        for task in TASKS:
            layer.lora_A[task].weight.requires_grad_(True)
            layer.lora_B[task].weight.requires_grad_(True)
    trainable = [p for p in model.parameters() if p.requires_grad]
    lora_before = [p.detach().clone() for p in trainable]
    optimizer = torch.optim.AdamW([*model.parameters()], lr=1e-2)
    ensemble = AdapterEnsemble(model, TASKS)
    ids = torch.tensor([[1, 100, 2000, 30000, 100, 2000]])
    model.train()
    for _ in range(3):
        with ensemble.routing(gate, attention_mask=torch.ones_like(ids)):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    ensemble.remove()
    # the optimizer did train through the ensemble ...
    assert any(not torch.equal(p, q) for p, q in zip(trainable, lora_before, strict=True))
    # ... and the gate did not move
    for key, value in gate.rows.items():
        assert torch.equal(value, before[key])


def test_gate_saves_and_loads(tmp_path, tiny_model_dir):
    model = _peft_model(tiny_model_dir)
    gate = calibrate_gate(model, {t: [_repeated(t)] for t in TASKS}, GateConfig(2, "token"))
    loaded = Gate.load(gate.save(tmp_path / "gate.safetensors"))
    assert loaded.tasks == TASKS and loaded.config == GateConfig(2, "token")
    assert all(torch.equal(loaded.rows[k], v) for k, v in gate.rows.items())


def test_routing_refuses_a_router_for_other_tasks(tiny_model_dir):
    model = _peft_model(tiny_model_dir)
    ensemble = AdapterEnsemble(model, TASKS)
    with pytest.raises(ValueError, match="router is for"), ensemble.routing(uniform(TASKS[:2])):
        pass
    with pytest.raises(ValueError, match="no adapter"):
        AdapterEnsemble(model, (*TASKS, "delta"))
    ensemble.remove()


# --- the saved ensemble: a model folder ------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tiny_model_dir, tmp_path_factory):
    """A saved 3-task ensemble on the tiny model, its gate and a routed reference model."""
    model = _peft_model(tiny_model_dir)
    gate = calibrate_gate(model, {t: [_repeated(t)] for t in TASKS}, GateConfig(top_k=2))
    folder = tmp_path_factory.mktemp("saved") / "ensemble"
    save_ensemble(folder, model, gate, base=tiny_model_dir,
                  calibration_items=dict.fromkeys(TASKS, 2), evaluation={"note": "x"})  # fmt: skip
    return folder, model, gate


def test_a_saved_ensemble_is_a_folder_of_json_and_safetensors_only(saved, tiny_model_dir):
    folder, _, _ = saved
    manifest = read_manifest(folder)
    assert manifest["format"] == "sbs-ensemble" and manifest["version"] == 1
    assert manifest["tasks"] == list(TASKS)
    assert manifest["gate"] == {
        "top_k": 2, "granularity": "sequence", "temperature": 1.0, "aggregation": "mean"
    }  # fmt: skip
    assert manifest["calibration_items"] == dict.fromkeys(TASKS, 2)
    assert manifest["base"]["path"] == str(tiny_model_dir.resolve())
    assert manifest["base"]["hidden_size"] == 32 and manifest["evaluation"] == {"note": "x"}
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    for task in TASKS:
        assert {f"adapters/{task}/adapter_model.safetensors",
                f"adapters/{task}/adapter_config.json"} <= files  # fmt: skip
    assert {"ensemble.json", "gate.safetensors"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]
    assert not list(folder.parent.glob(".ensemble.*"))  # no partial folder left behind


def test_save_then_load_gives_identical_logits(saved, tmp_path):
    folder, model, gate = saved
    loaded, tokenizer = load_ensemble(folder, cache_dir=tmp_path / "cache")
    ensemble = attached_ensemble(loaded)
    assert ensemble is not None and ensemble.router is not None
    assert ensemble.router.config == gate.config and tokenizer.eos_token_id is not None
    ids = torch.tensor([[1, 100, 100, 2000, 7, 7], [1, 30000, 30000, 30000, 5, 5]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1]])
    reference = AdapterEnsemble(model, TASKS)
    with reference.routing(gate, attention_mask=mask):
        expected = _logits(model, ids, mask)
    reference.remove()
    got = _logits(loaded, ids, mask)  # routed with no context manager: the gate is attached
    assert torch.equal(got, expected)
    loaded.set_adapter("beta")
    ensemble.detach()  # the plain PeftModel again
    model.set_adapter("beta")
    assert torch.equal(_logits(loaded, ids, mask), _logits(model, ids, mask))


def test_load_takes_the_base_from_base_path_over_the_manifest(saved, tiny_model_dir, tmp_path):
    folder, model, gate = saved
    moved = tmp_path / "moved"
    import shutil

    shutil.copytree(folder, moved)
    manifest = read_manifest(moved)
    manifest["base"]["path"] = str(tmp_path / "gone")
    (moved / "ensemble.json").write_text(json.dumps(manifest))
    with pytest.raises(FileNotFoundError):
        load_ensemble(moved, cache_dir=tmp_path / "cache")
    loaded, _ = load_ensemble(moved, base_path=tiny_model_dir, cache_dir=tmp_path / "cache")
    assert attached_ensemble(loaded) is not None
    manifest["base"]["hidden_size"] = 64  # adapters made on another base
    (moved / "ensemble.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="was made on"):
        load_ensemble(moved, base_path=tiny_model_dir, cache_dir=tmp_path / "cache")
    manifest["version"] = 2
    (moved / "ensemble.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="version"):
        read_manifest(moved)


def test_load_model_generates_with_routing_and_the_cache_changes_nothing(saved, tmp_path):
    from adaptation.generate import GenerationSettings, generate_answers
    from adaptation.loading import load_any as load_model

    folder, model, gate = saved
    loaded = load_model(folder, cache_dir=tmp_path / "cache", device="cpu")
    assert loaded.folder == folder and attached_ensemble(loaded.model) is not None
    settings = GenerationSettings(max_new_tokens=6, min_new_tokens=6, use_chat_template=False)
    prompts = ["кошка и собака", "23 + 45 = 68, а 12 + 30 ="]
    answers = sorted(generate_answers(loaded, prompts, settings), key=lambda a: a.index)
    assert [a.new_tokens for a in answers] == [6, 6]

    # Greedy with the KV cache (the running means carried over) == without it (recomputed).
    batch = loaded.tokenizer(prompts, return_tensors="pt", padding=True)
    assert (batch["attention_mask"][:, 0] == 0).any()  # left padding in play
    runs = {}
    for use_cache in (True, False):
        out = loaded.model.generate(
            **batch, max_new_tokens=6, min_new_tokens=6, do_sample=False, use_cache=use_cache,
            pad_token_id=loaded.tokenizer.pad_token_id, output_scores=True,
            return_dict_in_generate=True,
        )  # fmt: skip
        runs[use_cache] = out
    assert torch.equal(runs[True].sequences, runs[False].sequences)
    for cached, fresh in zip(runs[True].scores, runs[False].scores, strict=True):
        assert torch.allclose(cached, fresh, atol=1e-5)
    # ... and the answers are the routed model's, not the base's or one adapter's
    ensemble = attached_ensemble(loaded.model)
    with torch.no_grad():
        routed = loaded.model(**batch).logits
        ensemble.detach()
        with adapters_off(loaded.model):
            base = loaded.model(**batch).logits
        ensemble.attach(gate.to("cpu"))
    assert not torch.allclose(routed, base, atol=1e-4)
