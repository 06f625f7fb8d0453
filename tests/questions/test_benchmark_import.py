"""Importing benchmarks: the command, the page, the shipped sets; nothing half-written."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from sbs.questions.models import Benchmark, BenchmarkItem
from tests import factories
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

GENERAL = ROOT / "data" / "benchmark_general_ru.jsonl"


def test_import_benchmark_command_writes_every_item(capsys):
    call_command("import_benchmark", str(GENERAL), "--name", "general")
    benchmark = Benchmark.objects.get(name="general")
    items = list(benchmark.items.all())
    assert len(items) == 40 and "imported 40 items" in capsys.readouterr().out
    first = json.loads(GENERAL.read_text(encoding="utf-8").splitlines()[0])
    assert (items[0].external_id, items[0].choices, items[0].answer) == (
        first["id"], first["choices"], first["answer"]
    )  # fmt: skip
    assert {i.category for i in items} == {
        "general_knowledge", "reasoning_over_text", "text_understanding", "english"
    }  # fmt: skip
    assert items[10].context  # reasoning over a text carries its passage


def test_a_bad_file_names_every_line_and_writes_nothing(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"question": "ok", "choices": ["a", "b"], "answer": 1}),
                json.dumps({"question": "bad", "choices": ["a"], "answer": 0}),
                json.dumps({"question": "worse", "choices": ["a", "b"], "answer": 7}),
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(CommandError) as err:
        call_command("import_benchmark", str(path), "--name", "bad")
    assert "line 2: an item needs at least 2 choices" in str(err.value)
    assert "line 3: “answer” is 7" in str(err.value)
    assert not Benchmark.objects.exists() and not BenchmarkItem.objects.exists()


def test_a_csv_benchmark_imports_through_the_command(tmp_path):
    path = tmp_path / "set.csv"
    path.write_text(
        "id,question,choice_1,choice_2,choice_3,answer,category\n"
        "a,Два плюс два?,три,четыре,пять,1,math\n",
        encoding="utf-8",
    )
    call_command("import_benchmark", str(path), "--name", "csv-set")
    [item] = Benchmark.objects.get(name="csv-set").items.all()
    assert item.choices == ["три", "четыре", "пять"] and item.answer == 1


def test_shipped_sets_import_with_their_licence():
    call_command("import_benchmark", "--shipped", "mednsktest")
    benchmark = Benchmark.objects.get(name="mednsktest")
    assert benchmark.license == "BSD-3-Clause" and benchmark.items.count() > 1900
    assert not benchmark.items.filter(choices__icontains="*****").exists()
    with pytest.raises(CommandError, match="already exists"):
        call_command("import_benchmark", "--shipped", "mednsktest")


def test_the_page_imports_a_file_and_explains_errors_in_russian(client, settings):
    settings.LANGUAGE_CODE = "ru"
    client.force_login(factories.researcher())
    url = reverse("questions:benchmarks")
    bad = json.dumps({"question": "q", "choices": ["a"], "answer": 0}).encode()
    response = client.post(
        url, {"action": "upload", "name": "x", "language": "ru",
              "file": SimpleUploadedFile("x.jsonl", bad)},
        headers={"accept-language": "ru"},
    )  # fmt: skip
    html = response.content.decode()
    assert response.status_code == 200 and "строка 1" in html and "не меньше 2" in html
    assert not Benchmark.objects.exists()
    response = client.post(
        url, {"action": "upload", "name": "general", "language": "ru",
              "file": SimpleUploadedFile("g.jsonl", GENERAL.read_bytes())},
    )  # fmt: skip
    benchmark = Benchmark.objects.get(name="general")
    assert response.status_code == 302 and response["Location"] == reverse(
        "questions:benchmark", args=[benchmark.pk]
    )
    detail = client.get(response["Location"]).content.decode()
    assert "Волга" in detail and "reasoning_over_text" in detail


def test_the_page_imports_a_shipped_set(client):
    client.force_login(factories.researcher())
    response = client.post(
        reverse("questions:benchmarks"),
        {"action": "shipped", "shipped": "general-ru", "name": ""},
    )
    assert response.status_code == 302
    assert Benchmark.objects.get(name="general-ru").items.count() == 40


def test_annotators_do_not_see_benchmark_pages(client):
    client.force_login(factories.annotator("ann"))
    assert client.get(reverse("questions:benchmarks")).status_code == 404
