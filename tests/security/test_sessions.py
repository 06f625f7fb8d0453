"""Sessions and forms: login throttling, a new session key at login, CSRF on every POST."""

from __future__ import annotations

import re
import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client, RequestFactory
from django.urls import reverse

from sbs.accounts import throttle
from sbs.studies.models import Assignment
from sbs.voting.models import Vote
from tests import factories
from tests.security.urlwalk import endpoints, fill

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")
PASSWORD = "pw-researcher-1"


def _login(client: Client, username: str, password: str, **extra: str):
    return client.post(
        LOGIN, {"username": username, "password": password}, HTTP_ACCEPT_LANGUAGE="en", **extra
    )


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_five_failures_for_a_name_from_one_address_block_that_pair_with_429_and_a_message():
    factories.researcher("res", PASSWORD)
    client = Client()
    for _ in range(throttle.FAILURES_PER_PAIR):
        response = _login(client, "res", "wrong")
        assert response.status_code == 200
        assert "Wrong user name or password" in response.content.decode()
    blocked = _login(client, "res", PASSWORD)  # the right password, too late
    assert blocked.status_code == 429
    assert not _logged_in(client)
    html = blocked.content.decode()
    assert "Too many failed log-in attempts. Try again in 15 minutes." in html
    assert "Wrong user name or password" not in html
    assert 'name="password"' in html  # it is the login page, with its form
    assert 0 < int(blocked["Retry-After"]) <= throttle.WINDOW_SECONDS
    in_russian = client.post(
        LOGIN, {"username": "res", "password": PASSWORD}, HTTP_ACCEPT_LANGUAGE="ru"
    )
    assert in_russian.status_code == 429
    assert "Повторите через 15 минут." in in_russian.content.decode()
    assert _login(client, "RES", PASSWORD).status_code == 429  # case does not buy new guesses
    # The same name from another address is not blocked: the failures were not its own.
    other = Client(REMOTE_ADDR="10.0.0.7")
    assert _login(other, "res", PASSWORD).status_code == 302
    assert _logged_in(other)


def test_fifty_failures_from_a_stranger_do_not_lock_alice_out():
    """Before: 5 failures on a name blocked it for everyone, so a stranger kept it locked."""
    factories.annotator("alice", "alice-pass-1")
    factories.annotator("bob", "bob-pass-1")
    stranger = Client(REMOTE_ADDR="203.0.113.9")
    statuses = [_login(stranger, "alice", f"guess-{i}").status_code for i in range(50)]
    assert statuses[: throttle.FAILURES_PER_PAIR] == [200] * throttle.FAILURES_PER_PAIR
    assert set(statuses[throttle.FAILURES_PER_PAIR :]) == {429}
    alice = Client(REMOTE_ADDR="198.51.100.1")
    assert _login(alice, "alice", "alice-pass-1").status_code == 302  # at once
    assert _logged_in(alice)
    # X is blocked: for alice, even with her password, and (it kept hammering) for any name.
    assert _login(stranger, "alice", "alice-pass-1").status_code == 429
    assert _login(stranger, "bob", "bob-pass-1").status_code == 429
    assert not _logged_in(stranger)


def test_a_stranger_hammering_past_the_name_ceiling_still_cannot_lock_the_name():
    """Refused attempts count against the address only, never against the name."""
    factories.annotator("alice", "alice-pass-1")
    stranger = Client(REMOTE_ADDR="203.0.113.9")
    for i in range(throttle.FAILURES_PER_USERNAME + 10):
        _login(stranger, "alice", f"guess-{i}")
    assert _login(Client(REMOTE_ADDR="198.51.100.1"), "alice", "alice-pass-1").status_code == 302


def test_unicode_spellings_of_a_name_share_its_budget():
    """Before: "ａｌｉｃｅ" (full-width) logs in as alice (NFKC) but had a budget of its own."""
    factories.annotator("alice", "alice-pass-1")
    stranger = Client(REMOTE_ADDR="203.0.113.9")
    for i in range(throttle.FAILURES_PER_PAIR):
        assert _login(stranger, "alice", f"guess-{i}").status_code == 200
    for spelling in ("ａｌｉｃｅ", "ALICE", " alice "):
        assert _login(stranger, spelling, "alice-pass-1").status_code == 429, spelling
    assert not _logged_in(stranger)
    owner = Client(REMOTE_ADDR="198.51.100.1")
    assert _login(owner, "ａｌｉｃｅ", "alice-pass-1").status_code == 302


def test_distributed_guessing_on_one_name_is_capped_by_the_name_ceiling():
    factories.annotator("alice", "alice-pass-1")
    per_address = throttle.FAILURES_PER_PAIR - 1  # each address stays under its own limits
    failures, n = 0, 0
    while failures < throttle.FAILURES_PER_USERNAME:
        bot = Client(REMOTE_ADDR=f"10.1.{n // 250}.{n % 250 + 1}")
        for _ in range(min(per_address, throttle.FAILURES_PER_USERNAME - failures)):
            assert _login(bot, "alice", f"guess-{failures}").status_code == 200
            failures += 1
        n += 1
    fresh = Client(REMOTE_ADDR="198.51.100.1")
    assert _login(fresh, "alice", "alice-pass-1").status_code == 429
    assert not _logged_in(fresh)
    factories.annotator("bob", "bob-pass-1")  # other names are untouched
    assert _login(fresh, "bob", "bob-pass-1").status_code == 302


def test_twenty_failures_from_one_address_block_every_name_from_it():
    factories.researcher("res", PASSWORD)
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for i in range(throttle.FAILURES_PER_ADDRESS):
        assert _login(attacker, f"guess{i % 4}-{i}", "wrong").status_code == 200
    assert _login(attacker, "res", PASSWORD).status_code == 429
    assert not _logged_in(attacker)
    assert _login(Client(REMOTE_ADDR="198.51.100.1"), "res", PASSWORD).status_code == 302


def test_an_ipv6_attacker_cannot_escape_the_address_limit_within_its_slash_64():
    """Before: every IPv6 address had its own budget, and a /64 holds 2**64 of them."""
    factories.researcher("res", PASSWORD)
    for i in range(throttle.FAILURES_PER_ADDRESS):
        rotating = Client(REMOTE_ADDR=f"2001:db8:1:2::{i + 1:x}")
        assert _login(rotating, f"guess-{i}", "wrong").status_code == 200
    assert _login(Client(REMOTE_ADDR="2001:db8:1:2:ffff::1"), "res", PASSWORD).status_code == 429
    assert _login(Client(REMOTE_ADDR="2001:db8:1:3::1"), "res", PASSWORD).status_code == 302


def test_the_admin_login_is_throttled_with_the_same_counters():
    """Before: /admin/login/ checked passwords without counting, a free guessing oracle."""
    root = get_user_model().objects.create_superuser("root", password="root-pass-1")
    admin_login = reverse("admin:login")
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for i in range(throttle.FAILURES_PER_PAIR):
        response = attacker.post(
            admin_login, {"username": "root", "password": f"guess-{i}"}, HTTP_ACCEPT_LANGUAGE="en"
        )
        assert response.status_code == 200
    # The main log-in sees the admin's failures...
    assert _login(attacker, "root", "root-pass-1").status_code == 429
    # ...and the admin refuses the right password while the pair is blocked.
    refused = attacker.post(
        admin_login, {"username": "root", "password": "root-pass-1"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "Too many failed log-in attempts" in refused.content.decode()
    assert not _logged_in(attacker)
    # The other way round: failures on the main log-in block the admin's.
    other = Client(REMOTE_ADDR="203.0.113.10")
    for i in range(throttle.FAILURES_PER_PAIR):
        _login(other, "root", f"guess-{i}")
    other.post(admin_login, {"username": "root", "password": "root-pass-1"})
    assert not _logged_in(other)
    # The owner from an address of their own still gets in.
    owner = Client(REMOTE_ADDR="198.51.100.1")
    response = owner.post(admin_login, {"username": "root", "password": "root-pass-1"})
    assert response.status_code == 302 and owner.session["_auth_user_id"] == str(root.pk)


def test_the_block_lifts_after_the_window(monkeypatch):
    factories.researcher("res", PASSWORD)
    client = Client()
    for _ in range(throttle.FAILURES_PER_PAIR):
        _login(client, "res", "wrong")
    assert _login(client, "res", PASSWORD).status_code == 429
    later = time.time() + throttle.WINDOW_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)  # the cache's expiry clock too
    assert _login(client, "res", PASSWORD).status_code == 302
    assert _logged_in(client)


def test_a_successful_login_resets_the_count_for_that_name_and_address():
    factories.researcher("res", PASSWORD)
    client = Client()
    for _round in range(2):
        for _ in range(throttle.FAILURES_PER_PAIR - 1):
            assert _login(client, "res", "wrong").status_code == 200
        assert _login(client, "res", PASSWORD).status_code == 302
        client.logout()


def test_client_address_trusts_only_the_configured_proxies(settings):
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.5"
    )
    assert throttle.client_address(request) == "10.0.0.1"  # no proxy configured: forged
    settings.LOGIN_THROTTLE_PROXY_HOPS = 1
    assert throttle.client_address(request) == "203.0.113.5"  # what our proxy saw
    settings.LOGIN_THROTTLE_PROXY_HOPS = 3  # more hops than entries: the header is forged
    assert throttle.client_address(request) == "10.0.0.1"


def test_login_issues_a_new_session_key():
    factories.researcher("res", PASSWORD)
    client = Client()
    session = client.session
    session["probe"] = "set before login"
    session.save()
    before = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert _login(client, "res", PASSWORD).status_code == 302
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before
    assert not SessionStore().exists(before)  # the old key is gone, not merely unused
    assert client.session["probe"] == "set before login"  # cycled, data kept
    assert _logged_in(client)


def test_login_and_vote_posts_without_csrf_token_are_refused(live):
    anonymous = Client(enforce_csrf_checks=True)
    assert anonymous.post(LOGIN, {"username": "owner", "password": PASSWORD}).status_code == 403
    assert not _logged_in(anonymous)

    annotator = live.annotators[0]
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    url = reverse("voting:vote", args=[live.study.pk])
    html = client.get(url).content.decode()
    fields = dict(re.findall(r'name="(assignment|shown)" value="([^"]+)"', html))
    response = client.post(url, {**fields, "choice": "left"})
    assert response.status_code == 403
    assert not Vote.objects.exists()
    # The same POST with the page's token goes through: the 403 was the token, nothing else.
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    assert client.post(url, {**fields, "choice": "left", "csrfmiddlewaretoken": token}).status_code == 302  # fmt: skip
    assert Vote.objects.filter(assignment__annotator=annotator).count() == 1


def test_every_post_without_csrf_token_is_refused(live):
    """Every endpoint of the URL conf, as the user who may use it, plus the language switch."""
    users = {"researcher": live.owner, "annotator": live.annotators[0], "public": None}
    assignment = Assignment.objects.filter(annotator=live.annotators[0]).first()
    problems = []
    targets = [(reverse("set_language"), None)]
    for endpoint in endpoints():
        url = reverse(endpoint.name, kwargs=fill(endpoint, study=live.study))
        targets.append((url, users[endpoint.audience]))
    for url, user in targets:
        client = Client(enforce_csrf_checks=True)
        if user is not None:
            client.force_login(user)
        body = {"choice": "left", "assignment": assignment.pk, "name": "x", "language": "en"}
        response = client.post(url, body)
        if response.status_code != 403:
            problems.append(f"POST {url} without a CSRF token: {response.status_code}")
    assert problems == [], "\n".join(problems)
