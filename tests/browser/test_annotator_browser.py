"""A real browser: Debian's Chromium driven by Playwright votes through a study by keyboard."""

from __future__ import annotations

import re
import shutil
from typing import Any

import pytest

from sbs.studies.models import Assignment
from sbs.voting.models import Vote
from tests import factories
from tests.browser.conftest import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM}"),
]


def _log_in_and_start(page: Any, base_url: str, username: str, password: str) -> None:
    """Log in on the login page and open the first study from "my studies"."""
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/annotate/$"))
    page.get_by_role("link", name=re.compile("Начать|Start")).click()


def test_annotator_votes_by_keyboard_and_sees_no_model_name(
    live_server, browser_page, two_models, tmp_path
):
    owner = factories.researcher()
    ann = factories.annotator("anna", password="anna-pass-123")
    study = factories.open_study_with_answers(owner, two_models, [ann], n=4)
    page = browser_page

    _log_in_and_start(page, live_server.url, "anna", "anna-pass-123")

    secrets = [study.model_a.name, study.model_b.name, study.model_a.path, study.model_b.path]
    keys = ["1", "2", "3", "4"]
    for i, key in enumerate(keys):
        page.wait_for_selector("#vote-form")
        assert page.locator("#progress").inner_text().strip() == f"{i + 1} / 4"
        html = page.content()
        for secret in secrets:
            assert secret not in html
        assert page.locator("#answer-left li").count() == 2  # Markdown list rendered
        if i == 0:
            page.screenshot(path=str(tmp_path / "vote.png"), full_page=True)
            page.fill("textarea[name=comment]", "первый комментарий")
            page.locator("body").click(position={"x": 5, "y": 5})  # leave the text box
        with page.expect_navigation():
            page.keyboard.press(key)
    page.wait_for_selector("text=/4 \\/ 4/")
    assert page.errors == []  # type: ignore[attr-defined]

    votes = Vote.objects.filter(assignment__annotator=ann).order_by("assignment__order")
    assert [v.choice for v in votes] == ["left", "right", "tie", "both_bad"]
    assert votes[0].comment == "первый комментарий"
    assert all(v.seconds_on_page > 0 for v in votes)
    assert Assignment.objects.filter(annotator=ann, vote__isnull=True).count() == 0


def test_vote_screen_stacks_answers_on_a_phone(live_server, browser_page, two_models):
    owner = factories.researcher()
    ann = factories.annotator("pavel", password="pavel-pass-123")
    factories.open_study_with_answers(owner, two_models, [ann], n=2)
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    _log_in_and_start(page, live_server.url, "pavel", "pavel-pass-123")
    left = page.locator("#answer-left").bounding_box()
    right = page.locator("#answer-right").bounding_box()
    assert right["y"] >= left["y"] + left["height"] - 1  # below, not beside
