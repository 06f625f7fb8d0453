"""Every endpoint of the URL conf, and how to fill its parameters from a live study.

A new URL pattern is picked up automatically. Its parameters are filled by the rules below;
a parameter no rule knows fails the test that asked, with a message saying where to teach
it, so a new endpoint can never be skipped silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

# Not ours to test here: Django's admin has its own permission system, and i18n/ is
# Django's language switch (it takes no ids). The HTTP API (api/) answers bearer tokens, not
# sessions: :func:`api_endpoints` walks it for the API's own access matrix.
SKIPPED_PREFIXES = ("admin/", "i18n/")
API_PREFIX = "api/"

_PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


@dataclass(frozen=True)
class Endpoint:
    route: str  # the full route, e.g. "studies/<int:pk>/answers/"
    name: str  # "namespace:name", "" when the pattern has none
    callback: Callable[..., Any]

    @property
    def params(self) -> list[str]:
        return [m.group("name") for m in _PARAM.finditer(self.route)]

    @property
    def audience(self) -> str:
        """Who may use it: "researcher" (the owner), "annotator" (one in the study; also any
        account's own pages, such as its API tokens), or "public" (no login: login, logout,
        the invite page and its old link form, home).

        API routes: "api-researcher" (a researcher's token; the study's owner),
        "api-annotator" (any account's token; one in the study), "api-public" (no token:
        the schema, and the API's root, a 404)."""
        if self.route.startswith(API_PREFIX):
            if self.name in ("api:openapi-json", "api:api-root"):
                return "api-public"
            if self.route.startswith(f"{API_PREFIX}annotate/") or self.name == "api:me":
                return "api-annotator"
            return "api-researcher"
        if self.name.startswith(("studies:", "catalog:", "questions:")):
            return "researcher"
        if self.name.startswith(("voting:", "api_tokens:")):
            return "annotator"
        if self.name in {"home", "login", "logout", "invite", "invite_old_link"}:
            return "public"
        pytest.fail(
            f"URL {self.route!r} (name {self.name!r}) has no known audience: teach "
            "tests/security/urlwalk.py Endpoint.audience who may use it"
        )

    def __str__(self) -> str:
        return f"/{self.route} ({self.name or 'unnamed'})"


def _walk(patterns: list[Any], prefix: str, namespace: str) -> list[Endpoint]:
    found: list[Endpoint] = []
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            found.extend(_walk(p.url_patterns, route, ns))
        elif isinstance(p, URLPattern):
            found.append(Endpoint(route, f"{namespace}{p.name}" if p.name else "", p.callback))
    return found


def endpoints() -> list[Endpoint]:
    """Every URL pattern of the pages: outside the skipped prefixes and the API."""
    everything = _walk(get_resolver().url_patterns, "", "")
    return [e for e in everything if not e.route.startswith((*SKIPPED_PREFIXES, API_PREFIX))]


def api_endpoints() -> list[Endpoint]:
    """Every URL pattern of the HTTP API (one per operation: a route that answers GET and
    POST is listed twice, under each operation's name)."""
    everything = _walk(get_resolver().url_patterns, "", "")
    return [e for e in everything if e.route.startswith(API_PREFIX)]


def fill(endpoint: Endpoint, *, study: Any) -> dict[str, Any]:
    """URL keyword arguments that point at ``study`` (or the object of the study it names)."""
    kwargs: dict[str, Any] = {}
    for name in endpoint.params:
        value = _value(endpoint, name, study)
        if value is None:
            pytest.fail(
                f"URL {endpoint} takes <{name}> and the access tests do not know how to fill "
                "it: add a rule to tests/security/urlwalk.py fill() so the new endpoint is "
                "tested as its owner and as intruders"
            )
        kwargs[name] = value
    return kwargs


def _value(endpoint: Endpoint, name: str, study: Any) -> Any:
    route, url_name = endpoint.route, endpoint.name
    if name == "study_id":
        return study.pk
    if name == "pk" and route.startswith("studies/<int:pk>/"):
        return study.pk  # everything under studies/<pk>/ belongs to a study
    if name == "pk" and route.startswith("studies/models/<int:pk>/"):
        return study.model_a.pk  # a model the study compares
    if url_name == "questions:detail" and name == "pk":
        return study.question_set.pk
    if url_name == "questions:benchmark" and name == "pk":
        from sbs.questions.models import Benchmark

        bench = Benchmark.objects.first() or Benchmark.objects.create(name="b", sha256="0" * 64)
        return bench.pk
    if name in ("model_pk", "model_id"):
        return study.model_a.pk
    if name == "question_set_id":
        return study.question_set.pk
    if name == "user_id":  # an annotator of the study: to remove, or to re-invite
        return study.annotators.order_by("pk").last().pk
    if url_name == "api_tokens:revoke" and name == "pk":  # a token of the first annotator
        from sbs.api.models import ApiToken
        from sbs.api.services import token_create

        first = study.annotators.order_by("pk").first()
        token = ApiToken.objects.filter(user=first).first()
        return (token or token_create(user=first, name="walk")[0]).pk
    if name == "study_pk":
        return study.pk
    if url_name == "studies:action" and name == "action":
        return "close"
    if url_name in ("studies:export", "api:export_download") and name == "fmt":
        return "csv"
    if name == "assignment_id":  # a pair of the study's first annotator
        from sbs.studies.models import Assignment

        first = study.annotators.order_by("pk").first()
        return Assignment.objects.filter(pair__study=study, annotator=first).first().pk
    if url_name == "invite_old_link" and name == "token":
        return "no-such-invite-token"
    return None
