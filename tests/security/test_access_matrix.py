"""Object access, generated from the URL conf: every URL that takes an id, as every kind of
intruder, with GET and POST. A new endpoint is covered without touching this file, or the
walk fails with a message saying how to teach it the new parameter."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import signing
from django.test import Client
from django.urls import reverse

from sbs.accounts.models import Invite
from sbs.api import throttle
from sbs.api.services import token_create, token_revoke
from sbs.catalog.models import AdaptationJob
from sbs.studies.models import Answer, Assignment, Study
from sbs.voting.models import Vote
from sbs.voting.services import vote_record
from tests.security.urlwalk import Endpoint, api_endpoints, endpoints, fill

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")

# Objects that every researcher may see by design, with the reason. Annotators and anonymous
# visitors are still kept out of them. Question sets and models are a shared library: their
# list pages and the study form offer every researcher every set and every model.
SHARED_BETWEEN_RESEARCHERS = {
    "questions:detail": "question sets are a library shared by all researchers",
    "catalog:adapt": "models are a library shared by all researchers",
    "catalog:ensemble": "models are a library shared by all researchers",
    "catalog:detail": "models and their recipes are a library shared by all researchers",
    "catalog:download": "models are a library shared by all researchers: the page and its files",
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


def _assert_untouched(study: Study, live: Any) -> None:
    """Nothing an intruder could write was written: the study's status, votes, accounts,
    annotators and invite links are as they were."""
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN, "an intruder changed the study's status"
    assert not Vote.objects.exists(), "an intruder's vote was stored"
    assert not get_user_model().objects.filter(username="intruder-made").exists()
    assert not study.annotators.filter(pk=live.outsider.pk).exists()
    assert study.annotators.filter(pk=live.annotators[1].pk).exists(), "an intruder removed one"
    assert not Invite.objects.exists(), "an intruder issued an invite link"


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
            "studies:annotators", "studies:revoke_invite", "studies:remove_annotator",
            "api_tokens:revoke"} <= with_ids  # fmt: skip
    assert not any(r.startswith(("admin/", "i18n/", "api/")) for r in routes.values())
    assert "studies:list" in routes and "voting:my_studies" in routes
    # The API is walked on its own (bearer tokens, not sessions): every route of it.
    api = {e.name for e in api_endpoints()}
    assert {"api:study_detail", "api:annotator_remove", "api:annotate_vote", "api:results",
            "api:export_download", "api:model_detail", "api:question_set_detail",
            "api:vote_list", "api:annotate_vote_change"} <= api  # fmt: skip
    assert all(e.route.startswith("api/") for e in api_endpoints())


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

    _assert_untouched(study, live)
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


# ------------------------------------------------------------------------------ the API
#
# The same matrix for every route of the HTTP API, with bearer tokens: each route that takes
# an id, with every method, as every kind of intruder, must answer 401, 403, 404 or 405, and
# its body must name nothing of the study. A route's owner is served.

API_METHODS = ("get", "post", "put", "delete")

# Library routes every researcher may use by design (as the pages: SHARED_BETWEEN_RESEARCHERS).
API_SHARED_BETWEEN_RESEARCHERS = {
    "api:question_set_detail": "question sets are a library shared by all researchers",
    "api:model_detail": "models and their recipes are a library shared by all researchers",
    "api:model_adapt": "models are a library shared by all researchers",
    "api:answers_import": "question sets are shared: any researcher may import answers to one "
    "(new systems only; a system that answered the set, and every study's answers, stay as they are)",
}


def _api_client(token: str | None, *, session_of: Any = None) -> Client:
    client = Client(headers={"authorization": f"Bearer {token}"}) if token else Client()
    if session_of is not None:
        client.force_login(session_of)
    return client


def _token(user: Any) -> str:
    return token_create(user=user, name="matrix")[1]


def _revoked_token(user: Any) -> str:
    row, token = token_create(user=user, name="revoked")
    assert token_revoke(user=user, token_id=row.pk)
    return token


def _api_rightful(live: Any, endpoint: Endpoint) -> Any:
    return {"api-researcher": live.owner, "api-annotator": live.annotators[0]}.get(
        endpoint.audience
    )


def _api_intruders(live: Any, endpoint: Endpoint, operation: str) -> dict[str, Client]:
    rightful = _api_rightful(live, endpoint)
    intruders = {
        "anonymous (no token)": _api_client(None),
        "a made-up token": _api_client("sbs_" + "A" * 43),
        "the rightful user's revoked token": _api_client(_revoked_token(rightful)),
        "the rightful user's session, no token": _api_client(None, session_of=rightful),
        "an annotator of no study": _api_client(_token(live.outsider)),
        "a researcher who does not own the study": _api_client(_token(live.other_researcher)),
    }
    if endpoint.audience == "api-researcher":
        intruders["an annotator of this very study"] = _api_client(_token(live.annotators[0]))
    if endpoint.audience == "api-annotator":
        intruders["the owner, who does not annotate"] = _api_client(_token(live.owner))
    if f"api:{operation}" in API_SHARED_BETWEEN_RESEARCHERS:
        del intruders["a researcher who does not own the study"]
    return intruders


def _api_operations() -> dict[tuple[str, str], str]:
    """(schema path, method) -> operation id (the URL name), from the served schema."""
    schema = Client().get("/api/openapi.json").json()
    return {
        (p, m): op["operationId"] for p, ops in schema["paths"].items() for m, op in ops.items()
    }


def _api_hostile_bodies(live: Any) -> dict[str, dict[str, Any]]:
    """A well-formed body for each operation that takes one, as an attacker would send it:
    it passes validation, so the refusal comes from the access rule, not from a 422."""
    victim = Assignment.objects.filter(annotator=live.annotators[0]).order_by("order").first()
    shown = signing.dumps([victim.pk, 0], salt="sbs.voting.shown")
    return {
        "api:annotator_add": {"existing": [live.outsider.username], "names": ["intruder-made"]},
        "api:model_adapt": {"name": "intruder-adapted"},
        "api:annotate_vote": {"assignment": victim.pk, "shown": shown, "choice": "left"},
        "api:annotate_vote_change": {"shown": shown, "choice": "right"},
        "api:study_create": {"name": "intruder", "question_set": 0, "model_a": 0, "model_b": 0},
    }


def _schema_path(endpoint: Endpoint) -> str:
    """The route as the schema writes it: "api/studies/<int:study_id>" -> "/api/studies/{study_id}"."""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", endpoint.route)


def _api_call(client: Client, method: str, url: str, body: dict[str, Any] | None) -> Any:
    if method in ("post", "put"):
        return getattr(client, method)(url, body or {}, content_type="application/json")
    return getattr(client, method)(url)


def _study_secrets(live: Any) -> list[str]:
    study = live.study
    return [study.name, study.model_a.name, study.model_b.name, study.question_set.name,
            "альфа", "бета", live.annotators[1].username, study.plan_salt]  # fmt: skip


@pytest.fixture
def named_live(live: Any, monkeypatch: Any) -> Any:
    """The live study with names an intruder must not learn; the failed-token throttle is
    lifted (else the made-up tokens would soon block every client of the test's address)."""
    monkeypatch.setattr(throttle, "FAILURES_PER_ADDRESS", 10**9)
    Study.objects.filter(pk=live.study.pk).update(name="Owner's confidential study")
    live.study.refresh_from_db()
    return live


def test_every_api_route_with_an_id_is_closed_to_everyone_but_its_owner(named_live):
    live, study = named_live, named_live.study
    operations = _api_operations()
    bodies = _api_hostile_bodies(live)
    secrets = _study_secrets(live)
    targets = [e for e in api_endpoints() if e.params]
    assert len(targets) >= 15
    routes = {e.route: e for e in targets}  # a route with GET and POST is listed twice
    problems: list[str] = []
    for endpoint in routes.values():
        url = reverse(endpoint.name, kwargs=fill(endpoint, study=study))
        for method in API_METHODS:  # those the route lacks must be 405 (or refused before)
            operation = operations.get((_schema_path(endpoint), method), "")
            body = bodies.get(f"api:{operation}")
            for who, client in _api_intruders(live, endpoint, operation).items():
                response = _api_call(client, method, url, body)
                text = response.content.decode(errors="replace")
                if response.status_code not in (401, 403, 404, 405):
                    problems.append(
                        f"{method.upper()} {url} as {who}: {response.status_code} {text[:200]}"
                    )
                leaked = [s for s in secrets if s and s.lower() in text.lower()]
                if leaked:
                    problems.append(f"{method.upper()} {url} as {who} leaks {leaked}")

    _assert_untouched(study, live)
    assert not AdaptationJob.objects.exists(), "an intruder started an adaptation"

    # The owner (or the study's annotator, who has judged a pair by now) is served by every GET.
    first = Assignment.objects.filter(pair__study=study, annotator=live.annotators[0]).first()
    vote_record(
        annotator=live.annotators[0], assignment_id=first.pk, choice="tie", seconds_on_page=1
    )
    for endpoint in targets:
        if operations.get((_schema_path(endpoint), "get")) != endpoint.name.removeprefix("api:"):
            continue
        user = _api_rightful(live, endpoint)
        url = reverse(endpoint.name, kwargs=fill(endpoint, study=study))
        status = _api_client(_token(user)).get(url).status_code
        if status not in (200, 202):
            problems.append(f"GET {url} as its rightful user: {status} (expected 200/202)")

    assert problems == [], "API access matrix:\n  " + "\n  ".join(problems)


def test_every_api_route_without_an_id_keeps_out_anonymous_callers_and_annotators(named_live):
    live = named_live
    annotator = _api_client(_token(live.annotators[0]))
    problems: list[str] = []
    for endpoint in api_endpoints():
        if endpoint.params or endpoint.audience == "api-public":
            continue
        url = reverse(endpoint.name)
        for method in API_METHODS:
            anonymous = _api_call(Client(), method, url, None).status_code
            if anonymous not in (401, 405):
                problems.append(f"{method.upper()} {url} anonymous: {anonymous}")
            session = _api_call(_api_client(None, session_of=live.owner), method, url, None)
            if session.status_code not in (401, 405):
                problems.append(f"{method.upper()} {url} with a session: {session.status_code}")
            if endpoint.audience == "api-researcher":
                status = _api_call(annotator, method, url, None).status_code
                if status not in (403, 405):
                    problems.append(f"{method.upper()} {url} as an annotator: {status}")
    assert problems == [], "\n".join(problems)


def test_every_api_operation_with_a_body_has_a_hostile_body_in_the_matrix(named_live):
    """A new POST/PUT route that takes a JSON body must be taught to the matrix above, or
    its intruders would be stopped by validation (422) before the access rule is tested."""
    schema = Client().get("/api/openapi.json").json()
    bodies = _api_hostile_bodies(named_live)
    missing = [
        f"{m.upper()} {p} ({op['operationId']})"
        for p, ops in schema["paths"].items()
        for m, op in ops.items()
        if "application/json" in (op.get("requestBody") or {}).get("content", {})
        and f"api:{op['operationId']}" not in bodies
    ]
    assert missing == [], (
        "add a well-formed hostile body for these to _api_hostile_bodies in "
        f"tests/security/test_access_matrix.py: {missing}"
    )
