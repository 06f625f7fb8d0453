"""A study of four systems from imported answers, in a real browser: the researcher creates
it on the studies page (more systems, a budget of pairs) and starts it, an annotator votes by
keyboard without seeing any system's name, and the results page ranks all four."""

from __future__ import annotations

import json
import re
import shutil
from typing import Any

import pytest

from sbs.analysis import services as analysis_services
from sbs.catalog.answers import answers_import
from sbs.studies.models import Assignment, Pair, Study
from tests import factories
from tests.browser.conftest import CHROMIUM
from workers.tasks import compute_report

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM}"),
]

SYSTEMS = ("qwen-vllm", "llama-api", "ours-adapted", "gpt-baseline")


def _log_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_load_state()


def test_four_imported_systems_reach_a_ranking_in_the_browser(live_server, browser_page):
    page, base = browser_page, live_server.url
    factories.researcher("res", password="res-pass-1234")
    annotator = factories.annotator("anna", password="anna-pass-123")
    qset = factories.question_set(6, name="six")
    rows = [
        {"question_id": f"q{i}", "system": s, "answer": f"Ответ **{k}** на вопрос {i}."}
        for k, s in enumerate(SYSTEMS)
        for i in range(6)
    ]
    data = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()
    entries = {m.name: m for m in answers_import(data=data, file_format="jsonl",
                                                  question_set=qset, user=None)}  # fmt: skip

    _log_in(page, base, "res", "res-pass-1234")
    page.goto(f"{base}/studies/")
    page.fill("input[name=name]", "Four systems")
    page.select_option("select[name=question_set]", str(qset.pk))
    page.select_option("select[name=model_a]", str(entries["qwen-vllm"].pk))
    page.select_option("select[name=model_b]", str(entries["llama-api"].pk))
    for name in ("ours-adapted", "gpt-baseline"):
        page.check(f"input[name=more_models][value='{entries[name].pk}']")
    page.fill("input[name=pair_budget]", "12")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").last.click()
    study = Study.objects.get(name="Four systems")
    names = [m.name for m in study.systems()]
    assert names[:2] == ["qwen-vllm", "llama-api"] and set(names) == set(SYSTEMS)
    study.annotators.add(annotator)
    page.goto(f"{base}/studies/{study.pk}/")
    with page.expect_navigation():
        page.locator("form[action$='/start/'] button").click()
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN  # imported answers: no worker to wait for
    assert Pair.objects.filter(study=study).count() == 12

    page.context.clear_cookies()
    _log_in(page, base, "anna", "anna-pass-123")
    page.get_by_role("link", name=re.compile("Начать|Start")).click()
    for i in range(12):
        page.wait_for_selector("#vote-form")
        html = page.content()
        assert not any(name in html for name in SYSTEMS)  # blind: no system's name
        with page.expect_navigation():
            page.keyboard.press("1" if i % 3 else "2")
    assert Assignment.objects.filter(annotator=annotator, vote__isnull=True).count() == 0

    compute_report.apply(args=[analysis_services.report_request(study=study).pk])
    page.context.clear_cookies()
    _log_in(page, base, "res", "res-pass-1234")
    page.goto(f"{base}/studies/{study.pk}/results/")
    sections = page.locator("main section.card").evaluate_all("els => els.map(e => e.id)")
    assert sections[:2] == ["ranking-section", "pairwise-section"]  # the ranking leads
    assert page.locator("#ranking tbody tr").count() == 4
    assert page.locator("#pairwise-matrix tbody tr").count() == 4
    assert page.locator("#pairwise-verdicts tbody tr").count() == 6  # every pair of systems
    assert page.locator("#verdict-section").count() == 0  # no adapted-vs-original verdict
    assert page.errors == []  # type: ignore[attr-defined]
