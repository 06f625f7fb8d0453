import json

import pytest

from sbs.questions.importers import QuestionFileError, content_sha256, parse_questions


def test_csv_with_bom_and_optional_columns_parses():
    data = "\ufeffid,question,category,reference\nq1,Что такое ДНК?,general,Молекула\n".encode()
    [q] = parse_questions(data, "csv")
    assert (q.external_id, q.text, q.category, q.reference) == (
        "q1",
        "Что такое ДНК?",
        "general",
        "Молекула",
    )


def test_jsonl_without_id_numbers_rows():
    data = "\n".join(json.dumps({"question": t}, ensure_ascii=False) for t in ["а?", "б?"]).encode()
    assert [q.external_id for q in parse_questions(data, "jsonl")] == ["1", "2"]


def test_cp1251_file_is_refused_with_line_number():
    data = "question\nпервый\nвторой\n".encode("cp1251")
    with pytest.raises(QuestionFileError) as err:
        parse_questions(data, "csv")
    assert err.value.errors[0].line == 2
    assert "not UTF-8" in str(err.value) and "cp1251" in str(err.value)


def test_missing_question_column_is_named():
    with pytest.raises(QuestionFileError, match="missing column “question”"):
        parse_questions(b"text,category\nhello,x\n", "csv")


def test_every_problem_is_listed_with_its_line():
    data = "\n".join(
        [
            json.dumps({"id": "a", "question": "ok"}),
            json.dumps({"id": "b", "question": "   "}),
            "{broken json",
            json.dumps({"id": "a", "question": "dup"}),
            json.dumps(["not", "an", "object"]),
        ]
    ).encode()
    with pytest.raises(QuestionFileError) as err:
        parse_questions(data, "jsonl")
    found = {(e.line, e.message.split(" ")[0]) for e in err.value.errors}
    assert (2, "empty") in found
    assert (3, "invalid") in found
    assert (4, "duplicate") in found
    assert (5, "each") in found


def test_csv_row_with_extra_cells_is_refused():
    with pytest.raises(QuestionFileError, match="line 3: more cells"):
        parse_questions(b"question\nfine\nbad,extra\n", "csv")


def test_empty_file_is_refused():
    with pytest.raises(QuestionFileError, match="no questions"):
        parse_questions(b"question\n", "csv")


def test_hash_is_the_same_for_csv_and_jsonl_of_the_same_questions():
    csv_data = "id,question,category\n1,Вопрос,c\n".encode()
    jsonl_data = json.dumps({"id": "1", "question": "Вопрос", "category": "c"}).encode()
    assert content_sha256(parse_questions(csv_data, "csv")) == content_sha256(
        parse_questions(jsonl_data, "jsonl")
    )


def test_demo_set_has_78_questions_in_four_categories():
    from pathlib import Path

    data = (Path(__file__).resolve().parents[2] / "data" / "demo_questions_ru.jsonl").read_bytes()
    questions = parse_questions(data, "jsonl")
    assert len(questions) == 78
    assert {q.category for q in questions} == {
        "general_knowledge", "reasoning_over_text", "text_understanding", "instructions_creative",
    }  # fmt: skip


def test_deeply_nested_jsonl_line_is_a_line_error_not_a_crash():
    nested = '{"question": "x", "extra": ' + "[" * 100_000 + "]" * 100_000 + "}"
    data = "\n".join([json.dumps({"question": "fine"}), nested]).encode()
    with pytest.raises(QuestionFileError) as err:
        parse_questions(data, "jsonl")
    assert [(e.line, e.message) for e in err.value.errors] == [
        (2, "invalid JSON: nested too deeply")
    ]


def test_file_over_the_configured_limit_is_refused(settings):
    settings.QUESTION_FILE_MAX_BYTES = 100
    with pytest.raises(QuestionFileError, match="the limit is 100"):
        parse_questions(b"question\n" + b"x" * 200 + b"\n", "csv")
