"""A real browser opens an invite link: the token goes from the fragment into a POST body,
leaves the address bar, and never appears in a request URL or a Referer."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from sbs.studies import services
from tests import factories
from tests.accounts.conftest import make_study

CHROMIUM = os.environ.get("SBS_CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM}"),
]

FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    profile = tempfile.mkdtemp(prefix="sbs-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS, locale="en-US"
        )
        page = context.new_page()
        errors: list[str] = []
        requests: list[tuple[str, str]] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("request", lambda r: requests.append((r.url, r.headers.get("referer", ""))))
        page.errors = errors  # type: ignore[attr-defined]
        page.requests = requests  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def test_the_invite_link_opens_in_a_browser_without_the_token_reaching_the_server_in_a_url(
    live_server, browser_page
):
    owner = factories.researcher("owner")
    study = make_study(owner, "browser")
    [(ivan, token)] = services.annotators_create_bulk(study=study, names=["ivan"], created_by=owner)
    page = browser_page

    page.goto(f"{live_server.url}/invite/#{token}")
    page.wait_for_selector("text=Welcome, ivan")  # the script posted the token by itself
    assert "#" not in page.url and token not in page.url
    assert page.evaluate("window.location.hash") == ""
    page.fill("input[name=new_password1]", "a-long-pass-9876")
    page.fill("input[name=new_password2]", "a-long-pass-9876")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/annotate/$"))
    assert "Your user name is ivan" in page.content()

    assert page.requests, "no requests were seen"  # type: ignore[attr-defined]
    for url, referer in page.requests:  # type: ignore[attr-defined]
        assert token not in url, url
        assert token not in referer, referer
    assert page.errors == []  # type: ignore[attr-defined]  (a CSP refusal would be here)
    ivan.refresh_from_db()
    assert ivan.check_password("a-long-pass-9876")
