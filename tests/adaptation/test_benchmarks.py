"""Benchmark files checked whole, the sets shipped on PyPI, the held-out texts."""

from __future__ import annotations

import json

import pytest

from adaptation.benchmarks import (
    HELDOUT_FILES,
    SHIPPED_SETS,
    BenchmarkFileError,
    LoadReport,
    MCItem,
    baselines,
    content_sha256,
    heldout_texts,
    mednsk_items,
    parse_items,
    read_items,
    rl_wsd_items,
    sample_items,
    write_jsonl,
)


def jsonl(*rows: object) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows)


def test_jsonl_items_parse_with_optional_fields_and_row_numbers_as_ids():
    text = jsonl(
        {"question": "Столица?", "choices": ["Москва", "Рим"], "answer": 0},
        {"id": "x", "question": "О чём?", "choices": ["а", "б", "в"], "answer": 2,
         "category": "tu", "context": "Текст."},
    )  # fmt: skip
    first, second = parse_items(text, "jsonl")
    assert first == MCItem("Столица?", ("Москва", "Рим"), 0, "1", "", "")
    assert second == MCItem("О чём?", ("а", "б", "в"), 2, "x", "tu", "Текст.")


def test_csv_items_take_choice_columns_and_fewer_choices_than_columns():
    text = (
        "id,question,choice_1,choice_2,choice_3,answer,category\n"
        "a,Два плюс два?,три,четыре,пять,1,math\n"
        "b,Да или нет?,да,нет,,0,logic\n"
    )
    a, b = parse_items(text, "csv")
    assert (a.choices, a.answer, a.category) == (("три", "четыре", "пять"), 1, "math")
    assert b.choices == ("да", "нет")


def test_every_problem_is_listed_with_its_line_and_nothing_is_returned():
    text = jsonl(
        {"id": "a", "question": "ok", "choices": ["x", "y"], "answer": 0},
        {"id": "b", "question": "one choice", "choices": ["x"], "answer": 0},
        {"id": "c", "question": "answer out of range", "choices": ["x", "y"], "answer": 2},
        "{broken",
        {"id": "a", "question": "duplicate id", "choices": ["x", "y"], "answer": 1},
        {"id": "e", "question": "bool answer", "choices": ["x", "y"], "answer": True},
        {"id": "f", "question": "same choices", "choices": ["x", "x"], "answer": 0},
        {"id": "g", "question": "no choices key", "answer": 0},
    )
    with pytest.raises(BenchmarkFileError) as err:
        parse_items(text, "jsonl")
    found = {(p.line, p.message.split(" ")[0]) for p in err.value.problems}
    assert {(2, "an"), (3, "“answer”"), (4, "invalid"), (5, "duplicate"), (6, "“answer”"),
            (7, "choice"), (8, "missing")} <= found  # fmt: skip
    assert str(err.value).startswith("line 2: an item needs at least 2 choices")
    assert "it must be 0 to 1" in str(err.value)


def test_csv_without_choice_columns_is_refused_on_line_one():
    with pytest.raises(BenchmarkFileError, match="line 1: missing column “choice_1, choice_2"):
        parse_items("question,answer,choice_1\nq,0,a\n", "csv")


def test_problems_translate_through_their_template():
    with pytest.raises(BenchmarkFileError) as err:
        parse_items(jsonl({"question": "q", "choices": ["a", "b"], "answer": 5}), "jsonl")
    [problem] = err.value.problems
    russian = {problem.message: "«answer» равен %(answer)d, а вариантов %(n)d"}
    assert problem.text(lambda template: russian[template]) == "«answer» равен 5, а вариантов 2"


def test_the_sha_is_of_the_content_not_the_format(tmp_path):
    rows = [MCItem("q", ("a", "b"), 1, "1", "c")]
    path = tmp_path / "set.jsonl"
    write_jsonl(rows, path)
    csv_path = tmp_path / "set.csv"
    csv_path.write_text("id,question,choice_1,choice_2,answer,category\n1,q,a,b,1,c\n")
    assert content_sha256(read_items(path)) == content_sha256(read_items(csv_path))


def test_shipped_general_set_has_four_categories_of_ten():
    items = SHIPPED_SETS["general-ru"].load()
    counts = {c: sum(i.category == c for i in items) for c in {i.category for i in items}}
    assert counts == {"general_knowledge": 10, "reasoning_over_text": 10,
                      "text_understanding": 10, "english": 10}  # fmt: skip


def test_rl_wsd_reads_the_json_words_too_and_drops_other_and_unknown_senses():
    items = rl_wsd_items()
    categories = {i.category for i in items}
    assert categories == {"nouns", "verbs", "adjectives"}  # adjectives exist only as .json
    see = [i for i in items if i.id.startswith("verbs/RuTenTen/видеть/")]
    assert see and all("Другое" not in c and "Не могу" not in c for c in see[0].choices)
    castle = [i for i in items if i.id.startswith("nouns/RuTenTen/замок/")]
    assert castle[0].choices == ("Сооружение, дворец", "Устройство для запирания / скрепления")
    assert castle[0].answer == 1 and "замка" in castle[0].context
    assert all(0 <= i.answer < len(i.choices) for i in items)


def test_mednsk_strips_the_answer_mark_and_reads_one_edition_of_the_repeated_exam():
    report = LoadReport()
    items = mednsk_items(report)
    assert not any("*****" in c for i in items for c in i.choices)
    ott = next(i for i in items if i.id == "201402_gyne/2")
    assert ott.choices[ott.answer] == "Дмитрий Оскарович Отт"
    assert not any(i.id.startswith("201401_uzd/") for i in items)  # the older edition
    first = next(i for i in items if i.id == "201812_uzd/1")
    assert first.choices[first.answer] == "Взаимодействие ультразвука с тканями тела человека"
    assert {i.category for i in items} == {"УЗИ терапия", "Акушерство и гинекология"}
    assert report.kept == len(items) > 1900 and report.skipped["no unique answer"] >= 1


def test_baselines_read_only_the_choices_and_labels():
    items = [
        MCItem("q1", ("a", "bbb"), 1),
        MCItem("q2", ("a", "b", "ccc"), 0),
        MCItem("q3", ("aaaa", "b", "c", "d"), 1),
    ]
    base = baselines(items)
    assert base["chance"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 3)
    assert base["first"] == pytest.approx(1 / 3)
    assert base["longest"] == pytest.approx(1 / 3)
    assert base["majority"] == pytest.approx(2 / 3)


def test_sample_is_deterministic_and_per_category():
    items = [MCItem(f"q{k}", ("a", "b"), 0, str(k), "xy"[k % 2]) for k in range(20)]
    sample = sample_items(items, 3)
    assert sample == sample_items(list(reversed(items)), 3)[::-1]
    assert [i.category for i in sample].count("x") == 3 and len(sample) == 6


def test_heldout_texts_cover_the_four_categories():
    texts = heldout_texts()
    assert set(texts) == set(HELDOUT_FILES)
    for category, paragraphs in texts.items():
        assert len(paragraphs) >= 5 and sum(map(len, paragraphs)) > 2000, category
    assert texts["en_general"][0].startswith("The kettle")
