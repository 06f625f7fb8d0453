"""The README's example script runs a whole study against the API.

The script is read from README.md ("## HTTP API") and run as written, its ``requests`` served
by Django's test client. Where it waits (``time.sleep``), the world moves on as it would: the
workers write both models' answers, the annotators vote, the report job runs.
"""

from __future__ import annotations

import io
import json as jsonlib
import re
import sys
import time
import types
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from sbs.analysis import services as analysis_services
from sbs.catalog.models import ModelEntry
from sbs.studies import services as study_services
from sbs.studies.models import Answer, Assignment, GenerationRun, Study
from sbs.voting.services import vote_record
from tests import factories
from tests.api.conftest import token_for
from workers.tasks import compute_report

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def readme_script(which: int = 0) -> str:
    """The ``which``-th python example of README.md's HTTP API section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## HTTP API\n", 1)[1].split("\n## ", 1)[0]
    scripts = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(scripts) > which, "README.md's HTTP API section lacks a python example"
    return str(scripts[which])


class _Response:
    def __init__(self, response: Any) -> None:
        self.status_code = response.status_code
        self.content = response.content
        self.text = response.content.decode(errors="replace")
        self.headers = response.headers
        self._response = response

    def json(self) -> Any:
        return self._response.json()


class _Session:
    """What the script uses of requests.Session, over Django's test client."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}

    def request(self, method: str, url: str, *, headers=None, json=None, data=None, files=None):
        client = Client(headers={**self.headers, **(headers or {})})
        path = url.removeprefix("http://testserver")
        if files is not None:
            response = client.post(path, {**(data or {}), **files})
        elif json is not None:
            response = client.generic(
                method, path, data=jsonlib.dumps(json), content_type="application/json"
            )
        else:
            response = client.generic(method, path)
        return _Response(response)


def _world_moves_on(owner: Any) -> None:
    """One step of what happens while the script sleeps."""
    study = Study.objects.filter(owner=owner).get()
    if study.status == Study.Status.GENERATING:  # the workers write both models' answers
        for run in GenerationRun.objects.filter(study=study):
            Answer.objects.bulk_create(
                Answer(run=run, question=q, text=f"ответ {run.model.pk}-{q.pk}", prompt_tokens=5,
                       new_tokens=7, seconds=0.3, stop_reason="eos")
                for q in study.question_set.questions.all()
            )  # fmt: skip
            GenerationRun.objects.filter(pk=run.pk).update(
                status=GenerationRun.Status.DONE, done_count=run.total_count
            )
        assert study_services.study_open_if_ready(study_id=study.pk)
    elif study.status == Study.Status.OPEN:  # the annotators vote, or the report job runs
        pending = Assignment.objects.filter(pair__study=study, vote__isnull=True)
        for k, a in enumerate(pending):
            choice = ("left", "right", "tie")[k % 3]
            vote_record(annotator=a.annotator, assignment_id=a.pk, choice=choice, seconds_on_page=4)
        if not pending.exists():
            row = analysis_services.report_request(study=study)
            compute_report.apply(args=[row.pk])


def _run_readme(which: int, owner: Any, directory: Path, monkeypatch: Any) -> list[float]:
    """Run README's ``which``-th API example as ``owner`` in ``directory``, its requests served
    by the test client and each of its sleeps moving the world on; returns the sleeps."""
    monkeypatch.chdir(directory)
    monkeypatch.setenv("SBS_URL", "http://testserver")
    monkeypatch.setenv("SBS_TOKEN", token_for(owner))
    fake = types.ModuleType("requests")
    fake.Session = _Session  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "requests", fake)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        assert len(sleeps) < 10, "the example keeps waiting"
        _world_moves_on(owner)

    monkeypatch.setattr(time, "sleep", sleep)
    exec(compile(readme_script(which), "README.md", "exec"), {"__name__": "__main__"})  # noqa: S102
    return sleeps


def test_the_readme_example_runs_a_whole_study(monkeypatch, tmp_path, capsys):
    owner = factories.researcher("scientist")
    for name in ("SmolLM2-135M-Instruct", "SmolLM2-135M-ru"):
        ModelEntry.objects.create(name=name, kind="gguf", path=f"{name}.gguf", sha256="0" * 64)
    # The example's question file, cut to a few questions so the report computes quickly.
    (tmp_path / "data").mkdir()
    lines = (ROOT / "data" / "demo_questions_ru.jsonl").read_text().splitlines()[:6]
    (tmp_path / "data" / "demo_questions_ru.jsonl").write_text("\n".join(lines) + "\n")

    sleeps = _run_readme(0, owner, tmp_path, monkeypatch)

    out = capsys.readouterr().out
    study = Study.objects.get(owner=owner)
    assert study.status == Study.Status.OPEN and study.annotators.count() == 2
    assert re.search(r"Анна http://testserver/invite/#[\w-]+", out), out
    assert "SmolLM2-135M-ru: win rate" in out
    archive = zipfile.ZipFile(io.BytesIO((tmp_path / "votes.zip").read_bytes()))
    assert sorted(archive.namelist()) == ["manifest.json", f"study-{study.pk}-votes.csv"]
    assert len(sleeps) >= 2  # it waited for the answers and the votes


def test_the_readme_example_of_three_systems_reaches_a_ranking(monkeypatch, tmp_path, capsys):
    owner = factories.researcher("scientist")
    lines = (ROOT / "data" / "demo_questions_ru.jsonl").read_text().splitlines()[:12]
    (tmp_path / "questions.jsonl").write_text("\n".join(lines) + "\n")
    ids = [jsonlib.loads(line)["id"] for line in lines]
    systems = ("qwen-vllm", "llama-api", "our-adapted")
    rows = [
        {"question_id": q, "system": s, "answer": f"Ответ номер {k} на {q}.", "new_tokens": 5 + k}
        for k, s in enumerate(systems)
        for q in ids
    ]
    (tmp_path / "answers.jsonl").write_text(
        "".join(jsonlib.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    )

    _run_readme(1, owner, tmp_path, monkeypatch)  # imported answers: open at once, then votes

    out = capsys.readouterr().out
    study = Study.objects.get(owner=owner)
    assert study.status == Study.Status.OPEN
    assert {m.name for m in study.systems()} == set(systems)
    assert study.pairs.count() == 30 and study.annotators.count() == 3
    ranked = [line.split()[1] for line in out.splitlines() if re.match(r"^[123] ", line)]
    assert sorted(ranked) == sorted(systems), out
    assert len(re.findall(r" over .* Holm p ", out)) == 3, out
