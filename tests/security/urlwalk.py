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
# Django's language switch (it takes no ids).
SKIPPED_PREFIXES = ("admin/", "i18n/")

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
        """Who may use it: "researcher" (the owner), "annotator" (one in the study), or
        "public" (no login: login, logout, the invite page and its old link form, home)."""
        if self.name.startswith(("studies:", "catalog:", "questions:")):
            return "researcher"
        if self.name.startswith("voting:"):
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
    """Every URL pattern outside the skipped prefixes."""
    everything = _walk(get_resolver().url_patterns, "", "")
    return [e for e in everything if not e.route.startswith(SKIPPED_PREFIXES)]


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
    if name == "model_pk":
        return study.model_a.pk
    if name == "study_pk":
        return study.pk
    if url_name == "studies:action" and name == "action":
        return "close"
    if url_name == "studies:export" and name == "fmt":
        return "csv"
    if name == "assignment_id":  # a pair of the study's first annotator
        from sbs.studies.models import Assignment

        first = study.annotators.order_by("pk").first()
        return Assignment.objects.filter(pair__study=study, annotator=first).first().pk
    if url_name == "invite_old_link" and name == "token":
        return "no-such-invite-token"
    return None
