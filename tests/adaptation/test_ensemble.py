"""UDLM's training-free gate and the adapter ensemble, on tiny tensors and a tiny Llama."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from adaptation.ensemble import (
    AdapterEnsemble,
    Gate,
    GateConfig,
    StaticWeights,
    calibrate_gate,
    calibrate_on_items,
    gate_rows,
    gate_weights,
    lora_layers,
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


@pytest.mark.parametrize("granularity", ["token", "sequence"])
def test_top1_routes_well_separated_tasks_to_their_own_adapter(tiny_model_dir, granularity):
    model = _peft_model(tiny_model_dir)
    gate = calibrate_gate(model, {t: [_repeated(t)] for t in TASKS}, GateConfig(1, granularity))
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


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)
