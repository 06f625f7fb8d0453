"""Layout and accessibility in a real browser: every page fits 1280 px and a phone without
scrolling the page sideways (wide tables scroll in their box, first column sticky), the
vote page's progress stays readable on a phone, the account picker searches, and axe-core
(vendored under tests/browser/vendor, injected by Playwright) finds no serious or critical
violation on the vote, study and results pages.

Screenshots go to $SBS_SCREENSHOTS when set (to look at), else to the test's tmp folder.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from sbs.analysis.models import ReportCache
from sbs.studies.models import Answer, Assignment
from sbs.voting.services import vote_record
from tests import factories
from tests.browser.conftest import CHROMIUM
from workers.tasks import compute_report

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM}"),
]

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
LONG_WORD = "Сверхдлинноесловобезпробелов" * 6  # a token that must wrap, not widen the page


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SBS_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _log_in(page: Any, base_url: str, user: Any) -> None:
    """The session of a test client that logged in, handed to the browser."""
    client = Client()
    client.force_login(user)
    page.context.clear_cookies()
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url}]
    )


def _study(two_models: Any, n: int = 6) -> Any:
    """An open study with long answers, long names and votes, and a computed report."""
    owner = factories.researcher()
    annotators = [factories.annotator(f"annotator-{i}-{LONG_WORD[:20]}") for i in range(3)]
    study = factories.open_study_with_answers(owner, two_models, annotators, n=n)
    Answer.objects.filter(run__study=study).update(
        text=f"Ответ с длинным словом {LONG_WORD} и таблицей:\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    for user in annotators[:2]:
        for k, a in enumerate(Assignment.objects.filter(annotator=user).order_by("order")):
            choice = ["left", "right", "tie", "both_bad"][k % 4]
            vote_record(annotator=user, assignment_id=a.pk, choice=choice, seconds_on_page=4)
    return study, owner, annotators


def _fits(page: Any) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def _axe(page: Any) -> list[str]:
    """Serious and critical axe-core violations of the page (WCAG 2 A and AA rules)."""
    page.evaluate(AXE.read_text())  # evaluate runs outside the page's CSP
    result = page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes'][:3]]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _results_ready(page: Any, base_url: str, study: Any) -> None:
    page.goto(f"{base_url}{reverse('studies:results', args=[study.pk])}")
    row = ReportCache.objects.filter(study=study).latest("pk")
    assert compute_report.apply(args=[row.pk]).get() == "done"


def test_pages_fit_a_desktop_and_a_phone_and_tables_keep_their_first_column(
    live_server, browser_page, two_models, shots
):
    from tests.questions.test_benchmark_runs import _synthetic_runs, general

    study, owner, annotators = _study(two_models)
    _synthetic_runs(SimpleNamespace(study=study), general(), forgets=True)  # the widest table
    page, base = browser_page, live_server.url
    _log_in(page, base, owner)
    _results_ready(page, base, study)
    researcher_pages = {
        "study": reverse("studies:detail", args=[study.pk]),
        "annotators": reverse("studies:annotators", args=[study.pk]),
        "answers": reverse("studies:answers", args=[study.pk]),
        "results": reverse("studies:results", args=[study.pk]),
        "studies": reverse("studies:list"),
    }
    annotator_pages = {
        "vote": reverse("voting:vote", args=[study.pk]),
        "my-studies": reverse("voting:my_studies"),
    }
    too_wide = []
    for who, pages in ((owner, researcher_pages), (annotators[2], annotator_pages)):
        _log_in(page, base, who)
        for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            for name, url in pages.items():
                page.goto(f"{base}{url}")
                page.screenshot(path=str(shots / f"{name}-{size_name}.png"), full_page=True)
                width, inner = _fits(page)
                if width > inner + 1:
                    too_wide.append(f"{name} at {size_name}: {width}px in {inner}px")
                if size_name == "desktop":  # at 1280 px every column is in view
                    too_wide += [
                        f"{name}: table {w} in its {c}px box"
                        for w, c in page.evaluate(
                            "[...document.querySelectorAll('.table-wrap, .card')]"
                            ".map(e => [e.scrollWidth, e.clientWidth])"
                        )
                        if w > c + 1
                    ]
    assert too_wide == [], too_wide

    # On a phone the answers table scrolls in its box, and the question id stays in view.
    _log_in(page, base, owner)
    page.set_viewport_size(PHONE)
    page.goto(f"{base}{researcher_pages['answers']}")
    wrap = page.locator(".table-wrap").first
    assert wrap.evaluate("w => w.scrollWidth > w.clientWidth")  # it does overflow its box
    first = page.locator(".table-wrap tbody tr").first.locator(":scope > *").first
    before = first.bounding_box()
    wrap.evaluate("w => { w.scrollLeft = 250; }")
    after = first.bounding_box()
    assert abs(after["x"] - before["x"]) < 1, (before, after)
    page.screenshot(path=str(shots / "answers-phone-scrolled.png"))
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_vote_page_shows_its_progress_readably_on_a_phone(
    live_server, browser_page, two_models, shots
):
    study, _owner, annotators = _study(two_models)
    page, base = browser_page, live_server.url
    voter = annotators[2]
    first = Assignment.objects.filter(annotator=voter).order_by("order").first()
    vote_record(annotator=voter, assignment_id=first.pk, choice="left", seconds_on_page=4)
    _log_in(page, base, voter)
    page.set_viewport_size(PHONE)
    page.goto(f"{base}{reverse('voting:vote', args=[study.pk])}")
    label, bar = page.locator("#progress"), page.locator(".vote-head progress")
    assert label.inner_text().strip() == "2 / 6"
    assert float(label.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 16
    box = bar.bounding_box()
    assert box["width"] >= 300 and box["height"] >= 12, box  # a full-width bar, not a sliver
    page.mouse.wheel(0, 1500)  # the progress stays on screen while reading the answers
    page.wait_for_timeout(200)
    top = label.bounding_box()["y"]
    assert 0 <= top < 80, top
    page.screenshot(path=str(shots / "vote-phone-scrolled.png"))


def test_the_account_picker_filters_as_you_type(live_server, browser_page, two_models, shots):
    owner = factories.researcher()
    for name in ("anna", "annette", "boris", "vera"):
        factories.annotator(name)
    factories.researcher("another-researcher")
    study = factories.draft_study(owner, two_models, n=2)
    page, base = browser_page, live_server.url
    _log_in(page, base, owner)
    page.goto(f"{base}{reverse('studies:annotators', args=[study.pk])}")
    options = page.locator(".picker-option")
    assert sorted(o.strip() for o in options.all_inner_texts()) == [
        "anna",
        "annette",
        "boris",
        "vera",
    ]
    page.fill("input[data-picker-search]", "ann")
    visible = [o.inner_text().strip() for o in options.all() if o.is_visible()]
    assert visible == ["anna", "annette"]
    page.get_by_label("annette").check()
    page.fill("input[data-picker-search]", "bor")
    visible = [o.inner_text().strip() for o in options.all() if o.is_visible()]
    assert visible == ["annette", "boris"]  # a ticked account stays in view
    page.screenshot(path=str(shots / "picker.png"), full_page=True)
    page.get_by_label("boris").check()
    page.locator("#add-annotators button[type=submit]").click()
    page.wait_for_url(re.compile(r"/annotators/"))
    assert sorted(study.annotators.values_list("username", flat=True)) == ["annette", "boris"]
    assert page.errors == []  # type: ignore[attr-defined]


def test_axe_finds_no_serious_violation_on_the_vote_study_and_results_pages(
    live_server, browser_page, two_models, shots
):
    study, owner, annotators = _study(two_models)
    page, base = browser_page, live_server.url
    problems: dict[str, list[str]] = {}
    _log_in(page, base, owner)
    _results_ready(page, base, study)
    for name, url in (
        ("study", reverse("studies:detail", args=[study.pk])),
        ("annotators", reverse("studies:annotators", args=[study.pk])),
        ("results", reverse("studies:results", args=[study.pk])),
    ):
        page.goto(f"{base}{url}")
        problems[name] = _axe(page)
    _log_in(page, base, annotators[2])
    page.goto(f"{base}{reverse('voting:vote', args=[study.pk])}")
    problems["vote"] = _axe(page)
    page.set_viewport_size(PHONE)
    page.reload()
    problems["vote (phone)"] = _axe(page)
    page.screenshot(path=str(shots / "vote-phone.png"), full_page=True)
    assert {k: v for k, v in problems.items() if v} == {}


def test_links_survive_a_reload_and_a_used_link_explains_itself(
    live_server, browser_page, two_models, shots
):
    """The add form in a browser: the POST redirects, a reload re-sends nothing, the links
    stay on their page; the used link's page says what to do, in Russian."""
    owner = factories.researcher()
    study = factories.draft_study(owner, two_models, n=2)
    page, base = browser_page, live_server.url
    _log_in(page, base, owner)
    page.goto(f"{base}{reverse('studies:annotators', args=[study.pk])}")
    page.fill("textarea[name=names]", "Анна Петрова\nboris")
    page.locator("#add-annotators button[type=submit]").click()
    page.wait_for_selector("#invite-links")
    page.reload()  # a GET: nothing is created again
    links = page.locator("#invite-links td.mono").all_inner_texts()
    assert len(links) == 2 and study.annotators.count() == 2
    page.screenshot(path=str(shots / "annotators-links.png"), full_page=True)
    assert _axe(page) == []

    used = links[0]
    other = page  # the researcher's session ends here: the link logs the annotator in
    other.context.clear_cookies()
    other.goto(used)
    other.fill("input[name=new_password1]", "a-long-pass-9876")
    other.fill("input[name=new_password2]", "a-long-pass-9876")
    other.click("main button[type=submit]")
    other.wait_for_url(re.compile(r"/annotate/$"))
    other.context.clear_cookies()
    other.goto(used)
    other.wait_for_selector("#invite-problem-title")
    assert other.locator("#invite-problem-title").inner_text() == "Ссылка уже использована"
    other.screenshot(path=str(shots / "invite-used.png"), full_page=True)
    assert _axe(other) == []
