"""The tasks (toy and real Russian ones), their adapters and exact-match scoring."""

from __future__ import annotations

import pytest
import torch

from adaptation.tasks import (
    MAX_PROMPT_CHARS,
    RU_TASK_ITEMS,
    RU_TASKS,
    TASKS,
    AdapterConfig,
    TaskItem,
    add_task_adapters,
    encode_items,
    load_task_adapters,
    load_tasks,
    model_forward,
    prompt_ids,
    save_task_adapters,
    score_batch,
    score_items,
    split_items,
    task_items,
    train_adapter,
)


def _base(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)


def test_tasks_are_deterministic_correct_and_split_without_overlap():
    splits = load_tasks()
    assert tuple(splits) == TASKS
    for task in TASKS:
        items = task_items(task)
        assert items == task_items(task)
        split = splits[task]
        parts = [set(split.train), set(split.dev), set(split.test)]
        assert sum(map(len, parts)) == len(items) == len(set(items))
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert len(split.test) >= 25 and len(split.train) >= 60
    for item in task_items("arithmetic"):
        a, b = item.prompt.removesuffix(" =").split(" + ")
        assert int(item.answer) == int(a) + int(b)
    for item in task_items("case"):
        assert item.answer == " " + item.prompt.split("\n")[0].removeprefix("lower: ").upper()
    labels = {item.answer for item in splits["sentiment"].test}
    assert labels == {" хорошо", " плохо"}
    # the split of an item does not depend on the other items
    some = task_items("translate")[::3]
    assert set(split_items(some).test) == set(splits["translate"].test) & set(some)


def test_encoding_labels_the_answer_and_eos_only(tokenizer):
    items = [TaskItem("arithmetic", "12 + 30 =", " 42"), TaskItem("case", "lower: a\nupper:", " A")]
    enc = encode_items(tokenizer, items)
    for row, item in enumerate(items):
        ids = enc.input_ids[row][enc.attention_mask[row] == 1].tolist()
        prompt = prompt_ids(tokenizer, item)
        answer = tokenizer(item.answer, add_special_tokens=False)["input_ids"]
        assert ids == [*prompt, *answer, tokenizer.eos_token_id]
        labelled = enc.labels[row][enc.labels[row] != -100].tolist()
        assert labelled == [*answer, tokenizer.eos_token_id]


def test_teacher_forced_exact_match_agrees_with_greedy_generation(tiny_model_dir, tokenizer):
    model = _base(tiny_model_dir).eval()
    prompt = torch.tensor([prompt_ids(tokenizer, task_items("case")[0])])
    out = model.generate(
        input_ids=prompt, max_new_tokens=6, min_new_tokens=6, do_sample=False, pad_token_id=0
    )
    labels = torch.full_like(out, -100)
    labels[:, prompt.shape[1] :] = out[:, prompt.shape[1] :]
    with torch.no_grad():
        logits = model(input_ids=out).logits
    correct, nll = score_batch(logits, labels)
    assert correct == [True] and nll[0] > 0
    labels[0, -1] = (labels[0, -1] + 1) % len(tokenizer)  # any other last token
    assert score_batch(logits, labels)[0] == [False]


def test_scoring_only_the_answer_positions_equals_scoring_every_position(tiny_model_dir, tokenizer):
    model = _base(tiny_model_dir).eval()
    items = [*task_items("case")[:3], *task_items("arithmetic")[:2]]  # right padding in play
    enc = encode_items(tokenizer, items)
    with torch.no_grad():
        full = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
    expected = score_batch(full, enc.labels)
    got = score_items(model_forward(model), tokenizer, items, batch_size=3)
    assert got.correct == expected[0]
    assert got.nll == pytest.approx(expected[1], rel=1e-5)
    with torch.no_grad():  # and the mean of those NLLs is transformers' own loss
        loss = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask,
                     labels=enc.labels).loss  # fmt: skip
    tokens = int((enc.labels != -100).sum())
    assert sum(expected[1]) / tokens == pytest.approx(float(loss), rel=1e-5)


def test_training_an_adapter_lowers_its_loss_and_touches_nothing_else(
    tiny_model_dir, tokenizer, tmp_path
):
    config = AdapterConfig(steps=12, batch_size=8, learning_rate=1e-2)
    model = add_task_adapters(_base(tiny_model_dir), ("arithmetic", "case"), config)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    items = load_tasks(("arithmetic",))["arithmetic"].train
    losses = train_adapter(model, tokenizer, "arithmetic", items, config)
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(".arithmetic." in n for n in changed)

    save_task_adapters(model, tmp_path / "adapters", ("arithmetic", "case"))
    assert (tmp_path / "adapters" / "case" / "adapter_config.json").exists()
    loaded = load_task_adapters(
        _base(tiny_model_dir), tmp_path / "adapters", ("arithmetic", "case")
    )
    ids = encode_items(tokenizer, items[:3])
    for task in ("arithmetic", "case"):
        model.set_adapter(task)
        loaded.set_adapter(task)
        with torch.no_grad():
            a = model(input_ids=ids.input_ids, attention_mask=ids.attention_mask).logits
            b = loaded(input_ids=ids.input_ids, attention_mask=ids.attention_mask).logits
        assert torch.allclose(a, b, atol=1e-5)


def test_russian_tasks_are_real_items_posed_deterministically():
    from adaptation.benchmarks import mednsk_items

    splits = load_tasks(RU_TASKS)
    for task in RU_TASKS:
        items = task_items(task)
        assert items == task_items(task) and len(items) == RU_TASK_ITEMS == len(set(items))
        split = splits[task]
        parts = [set(split.train), set(split.dev), set(split.test)]
        assert sum(map(len, parts)) == len(items)
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert len(split.test) >= 25 and len(split.train) >= 80
        assert all(len(item.prompt) <= MAX_PROMPT_CHARS for item in items)
    for task in ("wsd", "medical"):
        for item in task_items(task):
            letter = item.answer.strip()
            assert item.answer == f" {letter}" and f"\n{letter}. " in item.prompt
            assert item.prompt.endswith("\nОтвет:")
    # the letter names the gold choice of the source item
    gold = {i.question: i.choices[i.answer] for i in mednsk_items()}
    for item in task_items("medical")[:40]:
        question = item.prompt.split("\n")[0].removeprefix("Вопрос: ")
        options = dict(line.split(". ", 1) for line in item.prompt.split("\n")[1:-1])
        assert options[item.answer.strip()] == gold[question]
    wsd = task_items("wsd")
    assert all("«" in item.prompt and item.prompt.startswith("Текст: ") for item in wsd)
    assert len({item.answer for item in wsd}) >= 3
    for item in task_items("definition"):
        word = item.answer.strip()
        assert item.answer == f" {word}" and word.isalpha() and word == word.lower()
        assert word[:4] not in item.prompt.lower()
        assert item.prompt.startswith("Определение: ") and item.prompt.endswith("\nСлово:")
