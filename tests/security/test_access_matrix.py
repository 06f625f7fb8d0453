"""Object access, generated from the URL conf: every URL that takes an id, as every kind of
intruder, with GET and POST. A new endpoint is covered without touching this file, or the
walk fails with a message saying how to teach it the new parameter."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import signing
from django.test import Client
from django.urls import reverse

from sbs.accounts.models import Invite
from sbs.studies.models import Answer, Assignment, Study
from sbs.voting.models import Vote
from tests.security.urlwalk import Endpoint, endpoints, fill

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")

# Objects that every researcher may see by design, with the reason. Annotators and anonymous
# visitors are still kept out of them. Question sets and models are a shared library: their
# list pages and the study form offer every researcher every set and every model.
SHARED_BETWEEN_RESEARCHERS = {
    "questions:detail": "question sets are a library shared by all researchers",
    "catalog:adapt": "models are a library shared by all researchers",
    "catalog:detail": "models and their recipes are a library shared by all researchers",
    "questions:benchmark": "benchmarks are a library shared by all researchers",
    "questions:model_benchmarks": "models and their benchmark scores are a shared library",
}


def _client(user: Any) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _is_login_redirect(response: Any) -> bool:
    return response.status_code == 302 and response.url.startswith(LOGIN)


def _intruders(live: Any, endpoint: Endpoint) -> dict[str, Any]:
    intruders = {
        "anonymous": None,
        "an annotator of no study": live.outsider,
        "a researcher who does not own the study": live.other_researcher,
    }
    if endpoint.audience == "researcher":
        intruders["an annotator of this very study"] = live.annotators[0]
    if endpoint.name in SHARED_BETWEEN_RESEARCHERS:
        del intruders["a researcher who does not own the study"]
    if endpoint.audience == "annotator":
        intruders["the owner, who does not annotate"] = live.owner
    if endpoint.audience == "public":  # only the token's holder: a made-up token is a 404
        intruders["the owner"] = live.owner
        intruders["an annotator of this very study"] = live.annotators[0]
    return intruders


def _rightful(live: Any, endpoint: Endpoint) -> Any:
    return {"researcher": live.owner, "annotator": live.annotators[0]}.get(endpoint.audience)


def test_the_walk_sees_the_id_urls_and_skips_only_admin_and_i18n():
    routes = {e.name: e.route for e in endpoints()}
    with_ids = {e.name for e in endpoints() if e.params}
    assert {"studies:detail", "studies:answers", "studies:results", "studies:action",
            "questions:detail", "studies:reinvite", "voting:vote", "invite_old_link",
            "studies:annotators", "studies:revoke_invite", "studies:remove_annotator"} <= with_ids  # fmt: skip
    assert not any(r.startswith(("admin/", "i18n/")) for r in routes.values())
    assert "studies:list" in routes and "voting:my_studies" in routes


def test_an_endpoint_with_an_unknown_parameter_fails_loudly():
    new = Endpoint("studies/things/<uuid:thing>/", "studies:thing", lambda request: None)
    with pytest.raises(pytest.fail.Exception, match="do not know how to fill it"):
        fill(new, study=None)
    with pytest.raises(pytest.fail.Exception, match="no known audience"):
        _ = Endpoint("reports/<int:pk>/", "reports:detail", lambda request: None).audience


def test_every_id_url_is_404_to_everyone_but_its_owner(live):
    study = live.study
    victim = Assignment.objects.filter(annotator=live.annotators[0]).order_by("order").first()
    # A body an attacker would send: a valid vote for someone else's assignment, new
    # annotators to add to someone else's study, an answer to exclude from it.
    answer = Answer.objects.filter(run__study=study).first()
    hostile_body = {
        "answer": answer.pk,
        "decision": "exclude",
        "assignment": victim.pk,
        "shown": signing.dumps([victim.pk, 0], salt="sbs.voting.shown"),
        "choice": "left",
        "names": "intruder-made",
        "existing": [live.outsider.pk],
        "annotator": live.annotators[1].pk,  # to remove, or to take over by a new link
        "form_token": "intruder-form-token-0123456789",
    }
    targets = [e for e in endpoints() if e.params]
    problems: list[str] = []

    for endpoint in targets:
        url = reverse(endpoint.name, kwargs=fill(endpoint, study=study))
        for who, user in _intruders(live, endpoint).items():
            client = _client(user)
            for method in ("get", "post"):
                response = client.get(url) if method == "get" else client.post(url, hostile_body)
                ok = response.status_code in (404, 405) or (
                    user is None and _is_login_redirect(response)
                )
                if not ok:
                    where = f" -> {response.url}" if response.status_code == 302 else ""
                    problems.append(
                        f"{method.upper()} {url} as {who}: {response.status_code}{where}"
                    )

    study.refresh_from_db()
    assert study.status == Study.Status.OPEN, "an intruder changed the study's status"
    assert not Vote.objects.exists(), "an intruder's vote was stored"
    assert not get_user_model().objects.filter(username="intruder-made").exists()
    assert not study.annotators.filter(pk=live.outsider.pk).exists()
    assert study.annotators.filter(pk=live.annotators[1].pk).exists(), "an intruder removed one"
    assert not Invite.objects.exists(), "an intruder issued an invite link"
    assert not Answer.objects.filter(excluded=True).exists(), "an intruder excluded an answer"

    for endpoint in targets:
        user = _rightful(live, endpoint)
        if user is None:
            continue
        url = reverse(endpoint.name, kwargs=fill(endpoint, study=study))
        client = _client(user)
        statuses = {"GET": client.get(url).status_code, "POST": client.post(url, {}).status_code}
        # An empty POST may be refused as malformed (400) or not allowed (405); one of the
        # two methods must serve the rightful user.
        if not any(s in (200, 302) for s in statuses.values()) or any(
            s not in (200, 302, 400, 405) for s in statuses.values()
        ):
            problems.append(f"{url} as its rightful user: {statuses} (expected 200/302)")

    assert problems == [], "access matrix:\n  " + "\n  ".join(problems)


def test_pages_without_ids_keep_out_anonymous_visitors_and_annotators(live):
    problems: list[str] = []
    for endpoint in endpoints():
        if endpoint.params or endpoint.audience == "public":
            continue
        url = reverse(endpoint.name)
        anonymous = Client().get(url)
        if not _is_login_redirect(anonymous):
            problems.append(f"GET {url} anonymous: {anonymous.status_code}")
        if endpoint.audience == "researcher":
            as_annotator = _client(live.annotators[0]).get(url)
            if as_annotator.status_code != 404:
                problems.append(f"GET {url} as an annotator: {as_annotator.status_code}")
    assert problems == [], "\n".join(problems)
