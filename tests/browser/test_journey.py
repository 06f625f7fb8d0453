"""The whole journey in a real browser, as a team lives it: a researcher (Russian interface)
uploads two models, imports questions, creates and starts a study (a real Celery worker
generates the answers over Redis), invites two annotators; the annotators (one English,
one Russian) open their links, vote, reload, vote in two tabs on the same pair, change a
vote; the researcher reads the results (computed by the worker) and downloads every export.

No lost link, no duplicate account, study or vote; every page is photographed in both
languages (to $SBS_SCREENSHOTS when set, else the test's tmp folder).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from sbs.core.queues import Queue
from sbs.studies.models import Assignment, Study
from sbs.voting.models import Vote, VoteRevision
from tests.browser.conftest import CHROMIUM, FLAGS
from tests.conftest import WorkerProcess, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM}"),
]

QUESTIONS = [
    {"id": "gk-1", "category": "general_knowledge", "question": "Почему небо голубое?"},
    {"id": "gk-2", "category": "general_knowledge", "question": "Какая река самая длинная?"},
    {"id": "tu-1", "category": "text_understanding", "question": "О чём эта фраза: «тише едешь»?"},
    {"id": "rt-1", "category": "reasoning_over_text", "question": "Сколько будет 2 + 3? Объясни."},
]


class Shots:
    """Full-page screenshots of each page in its reader's language and in the other one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: list[str] = []

    def __call__(self, page: Any, name: str, reopen: str = "", wait: str = "") -> None:
        """``reopen``: a URL to open again after switching (a page reached by a POST or by
        script, such as an invite link), then ``wait`` for a selector."""
        here = page.evaluate("document.documentElement.lang")
        other = "en" if here == "ru" else "ru"
        for lang in (here, other):
            if lang != here:
                _switch_language(page, lang)
                if reopen:
                    page.goto("about:blank")  # else a link that differs by its #fragment
                    page.goto(reopen)  # would not load the page again
                    page.wait_for_selector(wait)
            path = self.folder / f"{name}-{lang}.png"
            page.screenshot(path=str(path), full_page=True)
            self.taken.append(path.name)
        _switch_language(page, here)


def _switch_language(page: Any, lang: str) -> None:
    with page.expect_navigation():
        page.locator(f"form.lang button[value={lang}]").click()
    assert page.evaluate("document.documentElement.lang") == lang


@pytest.fixture
def shots(tmp_path: Path) -> Shots:
    folder = Path(os.environ.get("SBS_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return Shots(folder)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """One Chromium; each person gets a context of their own (cookies, language)."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _person(browser: Any, locale: str) -> Any:
    context = browser.new_context(
        locale=locale, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    return page


def _submit(page: Any, form: str) -> None:
    with page.expect_navigation():
        page.locator(f"{form} button[type=submit]").first.click()


def _accepted(page: Any, link: str) -> Any:
    """Open an invite link, set a password, land on "my studies"."""
    page.goto(link)
    for field in ("new_password1", "new_password2"):
        page.fill(f"input[name={field}]", "a-long-pass-2026")
    _submit(page, "main form")
    assert page.url.endswith("/annotate/"), page.url
    return page


def _archive(folder: Path, to: Path) -> Path:
    with tarfile.open(to, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return to


def _vote_on_screen(page: Any, choice: str) -> str:
    """Click a choice on the vote screen; the question that was on it."""
    question = page.locator("section.question").inner_text().strip()
    with page.expect_navigation():
        page.locator(f"#vote-form button[value={choice}]").click()
    return question


@pytest.fixture
def full_worker(model_store: Path, tmp_path: Path, purge_queues: None) -> Iterator[WorkerProcess]:
    """A worker on both queues: generation (GPU) and the report (default)."""
    proc = WorkerProcess(model_store, tmp_path / "worker.log", queues=(Queue.GPU, Queue.DEFAULT))
    proc.start()
    yield proc
    proc.stop()


def test_the_whole_journey_loses_nothing_and_doubles_nothing(
    live_server, browser, full_worker, tiny_model_dir, tmp_path, shots
):
    User = get_user_model()
    base = live_server.url
    owner = User.objects.create_user("olga", password="olga-pass-2026")
    from sbs.accounts.roles import make_researcher

    make_researcher(owner)

    # -- the researcher: log in, upload two models, import questions ------------------------
    res = _person(browser, "ru-RU")
    res.goto(f"{base}/login/")
    res.fill("input[name=username]", "olga")
    res.fill("input[name=password]", "olga-pass-2026")
    _submit(res, "main form")
    archive = _archive(tiny_model_dir, tmp_path / "tiny.tar.gz")
    res.goto(f"{base}{reverse('catalog:models')}")
    for name, parent in (("Original-Tiny", None), ("Adapted-Tiny", "Original-Tiny")):
        res.fill("input[name=name]", name)
        res.set_input_files("input[name=archive]", str(archive))
        if parent:
            res.select_option("select[name=parent]", label=parent)
        _submit(res, "main form[enctype]")
        assert res.locator("#models").get_by_text(name, exact=True).count() == 1, name
    res.reload()  # a reload after the redirect sends nothing again
    assert res.locator("#models tbody tr").count() == 2
    summary = res.locator("#models details.hash summary").first
    summary.click()  # the whole hash, selectable
    full = res.locator("#models details.hash code").first.inner_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", full), full
    shots(res, "models")

    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in QUESTIONS) + "\n")
    res.goto(f"{base}{reverse('questions:sets')}")
    res.fill("input[name=name]", "Вопросы")
    res.set_input_files("input[name=file]", str(questions))
    _submit(res, "main form[enctype]")
    shots(res, "question-sets")

    # -- create the study (twice sent: one study), start it, wait for the worker ------------
    res.goto(f"{base}{reverse('studies:list')}")
    shots(res, "studies")  # (a language switch reloads the page: photographed before filling)
    res.fill("input[name=name]", "Путь исследователя")
    res.select_option("select[name=question_set]", index=1)
    res.select_option("select[name=model_a]", label="Original-Tiny")
    res.select_option("select[name=model_b]", label="Adapted-Tiny")
    res.fill("input[name=max_new_tokens]", "12")
    res.fill("input[name=repeat_share]", "0")
    _submit(res, "main form")
    # Back shows the filled form again (a fresh page); sending it again makes no twin.
    res.go_back()
    res.fill("input[name=name]", "Путь исследователя")
    _submit(res, "main form")
    assert "Путь исследователя" in res.locator(".error, .errorlist").first.inner_text()
    assert Study.objects.count() == 1
    study = Study.objects.get()
    res.goto(f"{base}{reverse('studies:detail', args=[study.pk])}")
    shots(res, "study-draft")
    with res.expect_navigation():
        res.locator(f"form[action$='/{study.pk}/start/'] button").click()
    wait_for(
        lambda: Study.objects.get(pk=study.pk).status == Study.Status.OPEN,
        180,
        "the worker to generate both models' answers",
        full_worker.log,
    )
    res.goto(f"{base}{reverse('studies:detail', args=[study.pk])}")
    shots(res, "study-open")
    res.goto(f"{base}{reverse('studies:answers', args=[study.pk])}")
    assert res.locator("#answers tbody tr, table.grid tbody tr").count() >= 2 * len(QUESTIONS)
    shots(res, "answers")

    # -- invite two annotators; the links survive a reload and a re-sent form ---------------
    res.goto(f"{base}{reverse('studies:annotators', args=[study.pk])}")
    res.fill("textarea[name=names]", "anna\nboris")
    _submit(res, "#add-annotators")
    res.reload()
    res.go_back()
    res.go_forward()
    links = dict(
        zip(
            res.locator("#invite-links th").all_inner_texts(),
            res.locator("#invite-links td.mono").all_inner_texts(),
            strict=True,
        )
    )
    assert sorted(links) == ["anna", "boris"]
    assert User.objects.filter(username__in=["anna", "boris"]).count() == 2
    assert User.objects.filter(username__startswith="anna").count() == 1  # no anna_2
    shots(res, "annotators")

    # -- anna (English): the link, a vote, a reload, two tabs, a change ----------------------
    anna = _accepted(_person(browser, "en-US"), links["anna"])
    shots(anna, "my-studies")
    vote_url = f"{base}{reverse('voting:vote', args=[study.pk])}"
    anna.goto(vote_url)
    total = Assignment.objects.filter(annotator__username="anna").count()
    assert anna.locator("#progress").inner_text().strip() == f"1 / {total}"
    for side in ("left", "right"):  # the tiny model writes only newlines: said, not blank
        assert anna.locator(f"#answer-{side} .md").inner_text().strip() != ""
    shots(anna, "vote")
    _vote_on_screen(anna, "left")
    anna.reload()  # a GET: the vote is not sent again
    assert Vote.objects.filter(assignment__annotator__username="anna").count() == 1

    second = anna.context.new_page()  # a second tab on the same pair
    second.goto(vote_url)
    shown_in_second = second.locator("section.question").inner_text().strip()
    pair_in_second = int(second.locator("input[name=assignment]").input_value())
    asked = _vote_on_screen(anna, "right")
    assert asked == shown_in_second
    with second.expect_navigation():
        second.locator("#vote-form button[value=tie]").click()
    assert "/votes/" in second.url  # "already judged": offered the change page
    assert second.locator(".messages, .message, [role=alert]").count() >= 1
    shots(second, "already-judged")
    judged = Vote.objects.get(assignment_id=pair_in_second)
    assert judged.choice == "right"  # the stale tab changed nothing by itself
    with second.expect_navigation():
        second.locator("#vote-form button[value=tie]").click()  # now deliberately
    judged.refresh_from_db()
    assert judged.choice == "tie"
    assert VoteRevision.objects.filter(vote=judged).count() == 1
    second.close()

    anna.goto(vote_url)
    for _ in range(total - 2):
        _vote_on_screen(anna, "right")
    anna.goto(f"{base}{reverse('voting:votes', args=[study.pk])}")
    assert anna.locator("#my-votes tbody tr").count() == total
    page_text = anna.content()
    for secret in ("Original-Tiny", "Adapted-Tiny", study.model_a.path, study.model_b.path):
        assert secret not in page_text
    shots(anna, "my-votes")

    # -- boris (Russian): every pair by keyboard; his used link explains itself --------------
    boris = _accepted(_person(browser, "ru-RU"), links["boris"])
    boris.goto(vote_url)
    for key in ["1", "2", "3", "4"][:total] + ["1"] * max(0, total - 4):
        boris.wait_for_selector("#vote-form")
        boris.locator("body").click(position={"x": 5, "y": 5})
        with boris.expect_navigation():
            boris.keyboard.press(key)
    shots(boris, "vote-done")
    boris.context.clear_cookies()
    boris.goto(links["boris"])
    boris.wait_for_selector("#invite-problem-title")
    shots(boris, "invite-used", reopen=links["boris"], wait="#invite-problem-title")

    # -- the researcher: results from the worker, every export named apart -------------------
    res.goto(f"{base}{reverse('studies:results', args=[study.pk])}")
    res.wait_for_selector("#categories-section", timeout=120_000)  # the full report
    shots(res, "results")
    res.goto(f"{base}{reverse('studies:annotators', args=[study.pk])}")
    assert "anna" in res.locator("#annotator-accounts").inner_text()
    shots(res, "annotators-after")
    res.goto(f"{base}{reverse('studies:results', args=[study.pk])}")
    names = []
    for link in res.locator("a[href*='/report/']").all():
        with res.expect_download() as download:
            link.click()
        names.append(download.value.suggested_filename)
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
    assert len(names) == len(set(names)) >= 5, names
    votes_zip = next(tmp_path / n for n in names if "votes" in n and n.endswith(".zip"))
    with zipfile.ZipFile(votes_zip) as bundle:
        data = next(n for n in bundle.namelist() if n.endswith(".csv"))
        rows = list(csv.DictReader(io.StringIO(bundle.read(data).decode("utf-8-sig"))))

    # -- nothing lost, nothing doubled --------------------------------------------------------
    assert User.objects.count() == 3
    assert Study.objects.count() == 1
    assert Vote.objects.count() == 2 * total == len(rows)
    assert Assignment.objects.filter(vote__isnull=True).count() == 0
    assert VoteRevision.objects.count() == 1
    for person in (res, anna, boris):
        assert person.errors == [], person.errors
    assert len(shots.taken) >= 28
