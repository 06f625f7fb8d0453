"""Hostile answers, questions and comments render inert on every page that shows them, under
an enforcing Content-Security-Policy; no template switches escaping off."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from sbs.questions.models import Question, QuestionSet
from sbs.studies.models import Answer, Assignment, Study
from sbs.voting.models import Vote
from sbs.voting.services import vote_record
from tests.htmlcheck import script_problems

pytestmark = pytest.mark.django_db

CORPUS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "</script><script>alert(2)</script>",
    "<svg onload=alert(1)>",
    "<iframe src=javascript:alert(1)>",
]
HOSTILE = "\n\n".join(CORPUS)


def _csp_problems(response: Any) -> list[str]:
    policy = response.headers.get("Content-Security-Policy", "")
    problems = []
    if "Content-Security-Policy-Report-Only" in response.headers:
        problems.append("a report-only policy")
    if "script-src 'self'" not in policy or "object-src 'none'" not in policy:
        problems.append(f"no enforcing script policy: {policy!r}")
    if "unsafe-inline" in policy or "unsafe-eval" in policy:
        problems.append(f"an unsafe policy: {policy!r}")
    return problems


@pytest.fixture
def hostile(live: Any) -> Any:
    study = live.study
    Question.objects.filter(question_set=study.question_set).update(text=HOSTILE)
    Answer.objects.filter(run__study=study).update(text=HOSTILE)
    # Answers the researcher sees flagged (a model naming itself) are listed on the study page.
    Answer.objects.filter(run__study=study, question__position=0).update(
        text="I am Gemma.\n\n" + HOSTILE, self_identifies=True
    )
    Study.objects.filter(pk=study.pk).update(name="<script>alert('name')</script>")
    QuestionSet.objects.filter(pk=study.question_set_id).update(name="<svg onload=alert(1)>")
    for annotator in live.annotators:
        for assignment in Assignment.objects.filter(annotator=annotator)[:2]:
            vote_record(
                annotator=annotator,
                assignment_id=assignment.pk,
                choice="left",
                seconds_on_page=3.0,
                comment=HOSTILE,
            )
    study.refresh_from_db()
    return live


def test_hostile_text_is_inert_on_every_page_that_shows_it(hostile):
    study = hostile.study
    assert Vote.objects.filter(comment=HOSTILE).count() == 4
    pages: dict[str, Any] = {}
    annotator = Client()
    annotator.force_login(hostile.annotators[1])
    pages["vote screen"] = annotator.get(reverse("voting:vote", args=[study.pk]))
    owner = Client()
    owner.force_login(hostile.owner)
    for name, url in {
        "answers page": reverse("studies:answers", args=[study.pk]),
        "results page": reverse("studies:results", args=[study.pk]),
        "study page (flagged answers)": reverse("studies:detail", args=[study.pk]),
        "question set page": reverse("questions:detail", args=[study.question_set_id]),
        "study list": reverse("studies:list"),
    }.items():
        pages[name] = owner.get(url)

    problems: dict[str, list[str]] = {}
    for name, response in pages.items():
        assert response.status_code == 200, name
        html = response.content.decode()
        found = script_problems(html) + _csp_problems(response)
        if found:
            problems[name] = found
    assert problems == {}, problems

    # The pages did show the hostile text, as text: the checks above were not vacuous.
    for name in ("vote screen", "answers page", "question set page"):
        html = pages[name].content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, name
        assert "alert(2)" in html, name
    vote_html = pages["vote screen"].content.decode()
    assert len(re.findall(r"&lt;iframe src=javascript:alert\(1\)&gt;", vote_html)) == 3
    assert "I am Gemma" in pages["study page (flagged answers)"].content.decode()


def test_no_template_switches_escaping_off():
    folders = [Path(d) for d in settings.TEMPLATES[0]["DIRS"]]
    folders += list(Path(settings.BASE_DIR, "sbs").glob("*/templates"))
    templates = [p for folder in folders for p in folder.rglob("*.html")]
    assert len(templates) >= 10
    unsafe = re.compile(r"\|\s*safe(seq)?\b|{%\s*autoescape\s+off")
    offenders = [
        f"{path.relative_to(settings.BASE_DIR)}:{n}: {line.strip()}"
        for path in templates
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if unsafe.search(line)
    ]
    assert offenders == []
