"""Personal API tokens: made on the account page or by the command, stored as a digest,
shown once, refused once revoked; the session never authenticates the API."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sbs.api import services, throttle
from sbs.api.models import ApiToken
from tests import factories
from tests.api.conftest import api_client, token_for

pytestmark = pytest.mark.django_db

ME = "/api/me"


def test_a_token_is_stored_as_its_digest_and_opens_its_account():
    user = factories.researcher("alice")
    row, token = services.token_create(user=user, name="notebook")
    assert token.startswith("sbs_") and len(token) > 40
    stored = ApiToken.objects.filter(pk=row.pk).values().get()
    assert token not in {str(v) for v in stored.values()}  # never the token itself
    assert stored["token_sha256"] == services.token_digest(token)
    assert token.startswith(stored["prefix"]) and len(stored["prefix"]) == 12
    response = api_client(token).get(ME)
    assert response.status_code == 200
    assert response.json() == {"id": user.pk, "username": "alice", "researcher": True}


def test_last_use_is_noted_at_most_once_a_minute():
    user = factories.annotator("bob")
    row, token = services.token_create(user=user, name="client")
    assert row.last_used_at is None
    assert api_client(token).get(ME).status_code == 200
    row.refresh_from_db()
    first = row.last_used_at
    assert first is not None and timezone.now() - first < timedelta(seconds=30)
    assert api_client(token).get(ME).status_code == 200
    row.refresh_from_db()
    assert row.last_used_at == first  # no write per request
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=first - timedelta(minutes=5))
    api_client(token).get(ME)
    row.refresh_from_db()
    assert row.last_used_at > first - timedelta(minutes=5)


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer sbs_" + "x" * 43],
)
def test_a_missing_or_unknown_token_is_401_with_a_bearer_challenge(header):
    client = Client(headers={"authorization": header}) if header else Client()
    response = client.get(ME)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]


def test_a_revoked_token_and_a_deactivated_account_are_refused():
    user = factories.researcher("carol")
    row, token = services.token_create(user=user, name="old")
    _, other = services.token_create(user=user, name="kept")
    assert services.token_revoke(user=user, token_id=row.pk)
    assert not services.token_revoke(user=user, token_id=row.pk)  # once
    assert api_client(token).get(ME).status_code == 401
    assert api_client(other).get(ME).status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert api_client(other).get(ME).status_code == 401


def test_the_session_does_not_authenticate_the_api():
    """A logged-in browser calling the API is anonymous to it: no cookie-borne request can
    be forged from another site, so the API needs no CSRF token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(factories.researcher("dave"))
    assert client.get(ME).status_code == 401
    assert client.get("/api/studies").status_code == 401
    assert client.post("/api/studies", {}, content_type="application/json").status_code == 401


def test_a_bearer_request_needs_no_csrf_token():
    token = token_for(factories.researcher("erin"))
    client = Client(enforce_csrf_checks=True, headers={"authorization": f"Bearer {token}"})
    response = client.post("/api/studies", {"name": "x"}, content_type="application/json")
    assert response.status_code == 422  # reached the endpoint (the body is incomplete)


def test_an_annotators_token_is_refused_by_researcher_routes_with_403():
    token = token_for(factories.annotator("frank"))
    for url in ("/api/studies", "/api/models", "/api/question-sets"):
        response = api_client(token).get(url)
        assert response.status_code == 403, url
        assert "researchers" in response.json()["detail"]
    assert api_client(token).get("/api/annotate/studies").json() == []


def test_many_invalid_tokens_from_one_address_are_throttled_and_others_are_not(settings):
    good = token_for(factories.researcher("gina"))
    for _ in range(throttle.FAILURES_PER_ADDRESS):
        assert api_client("sbs_wrong-token").get(ME).status_code == 401
    blocked = api_client("sbs_wrong-token").get(ME)
    assert blocked.status_code == 429
    assert 0 < int(blocked["Retry-After"]) <= 15 * 60
    # Even a valid token is not looked at from the blocked address...
    assert api_client(good).get(ME).status_code == 429
    # ...while another address is served, and requests without a token are plain 401s.
    elsewhere = Client(headers={"authorization": f"Bearer {good}"}, REMOTE_ADDR="10.9.8.7")
    assert elsewhere.get(ME).status_code == 200
    assert Client().get(ME).status_code == 401


def test_the_command_prints_a_working_token():
    user = factories.researcher("hana")
    out = StringIO()
    call_command("create_api_token", "hana", "--name", "laptop", stdout=out)
    token = out.getvalue().strip()
    assert api_client(token).get(ME).json()["username"] == "hana"
    assert ApiToken.objects.get(user=user).name == "laptop"
    with pytest.raises(CommandError, match="no user"):
        call_command("create_api_token", "nobody", stdout=StringIO())


# --------------------------------------------------------------------------- the page


def _page_token(html: str) -> str | None:
    match = re.search(r'id="new-token-value">(sbs_[\w-]+)<', html)
    return match.group(1) if match else None


def test_the_page_shows_a_new_token_once_and_revokes_with_a_post():
    user = factories.annotator("ivan")
    client = Client()
    client.force_login(user)
    url = reverse("api_tokens:list")
    assert "No tokens yet." in client.get(url).content.decode()
    created = client.post(url, {"name": "my voting client"})
    assert created.status_code == 200
    assert "no-store" in created["Cache-Control"]
    token = _page_token(created.content.decode())
    assert token and api_client(token).get(ME).json()["username"] == "ivan"
    again = client.get(url).content.decode()
    assert _page_token(again) is None and token not in again
    row = ApiToken.objects.get(user=user)
    assert row.prefix in again and "my voting client" in again

    assert client.get(reverse("api_tokens:revoke", args=[row.pk])).status_code == 405
    revoked = client.post(reverse("api_tokens:revoke", args=[row.pk]), follow=True)
    assert "The token is revoked" in revoked.content.decode()
    assert api_client(token).get(ME).status_code == 401


def test_the_page_needs_a_login_and_a_csrf_token_and_revokes_only_ones_own():
    owner, stranger = factories.annotator("jan"), factories.researcher("kim")
    row, token = services.token_create(user=owner, name="mine")
    anonymous = Client().get(reverse("api_tokens:list"))
    assert anonymous.status_code == 302 and anonymous.url.startswith(reverse("login"))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    assert strict.post(reverse("api_tokens:revoke", args=[row.pk])).status_code == 403
    assert strict.post(reverse("api_tokens:list"), {"name": "x"}).status_code == 403
    other = Client()
    other.force_login(stranger)
    assert other.post(reverse("api_tokens:revoke", args=[row.pk])).status_code == 404
    assert "mine" not in other.get(reverse("api_tokens:list")).content.decode()
    assert api_client(token).get(ME).status_code == 200  # still in use
