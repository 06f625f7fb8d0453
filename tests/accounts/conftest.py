"""Fixtures for the account tests: a draft study (no model files needed) and its owner."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client
from django.urls import reverse

from sbs.catalog.models import ModelEntry
from sbs.studies import services
from sbs.studies.models import Study
from tests import factories

INVITE_LINK = re.compile(r"http://testserver/invite/#([\w-]+)")
# A row of the links box on the annotators page: the name, then its link.
NAMED_LINK = re.compile(
    r'<th scope="row">([^<]+)</th><td class="mono">http://testserver/invite/#([\w-]+)</td>'
)


@pytest.fixture(autouse=True)
def _fast_passwords_and_fresh_throttle(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.INVITE_MAX_AGE = 14
    caches["default"].clear()


@dataclass
class Lab:
    owner: Any
    study: Study
    client: Client  # logged in as the owner


def make_study(owner: Any, suffix: str) -> Study:
    models = tuple(
        ModelEntry.objects.create(name=f"{name}-{suffix}", kind="hf_folder", path=name, sha256="0")
        for name in ("a", "b")
    )
    return services.study_create(
        owner=owner,
        name=f"study {suffix}",
        question_set=factories.question_set(2, name=f"qs-{suffix}"),
        model_a=models[0],
        model_b=models[1],
    )


@pytest.fixture
def lab(db: None) -> Lab:
    owner = factories.researcher("owner")
    client = Client()
    client.force_login(owner)
    return Lab(owner=owner, study=make_study(owner, "1"), client=client)


@pytest.fixture
def other_lab(db: None) -> Lab:
    owner = factories.researcher("rival")
    client = Client()
    client.force_login(owner)
    return Lab(owner=owner, study=make_study(owner, "2"), client=client)


def form_token() -> str:
    return secrets.token_urlsafe(16)


def shown_links(html: str) -> dict[str, str]:
    """The invite links the annotators page shows, token by user name."""
    return dict(NAMED_LINK.findall(html))


def invite_by_page(lab: Lab, *names: str) -> dict[str, str]:
    """Create annotators on the annotators page, as a researcher does; their tokens by name
    (read from the page the POST redirects to)."""
    response = lab.client.post(
        reverse("studies:annotators", args=[lab.study.pk]),
        {"names": "\n".join(names), "form_token": form_token()},
    )
    assert response.status_code == 302, response.content.decode()
    html = lab.client.get(response.url).content.decode()
    links = shown_links(html)
    assert set(names) <= set(links), html
    return {name: links[name] for name in names}
