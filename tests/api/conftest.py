"""Fixtures for the API tests: an open study with answers (model rows without files, no
generation), its owner, annotators and outsiders, and clients that carry a bearer token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client

from sbs.api import services
from sbs.studies.models import Study
from tests import factories
from tests.analysis.test_report_fixtures import model_rows


@pytest.fixture(autouse=True)
def _fast_passwords_and_fresh_throttle(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    caches["default"].clear()


def token_for(user: Any, name: str = "test") -> str:
    return services.token_create(user=user, name=name)[1]


def api_client(token: str | None) -> Client:
    """A client that sends ``Authorization: Bearer <token>`` (none when None)."""
    if token is None:
        return Client()
    return Client(headers={"authorization": f"Bearer {token}"})


@dataclass
class Lab:
    study: Study
    owner: Any
    annotators: list[Any]
    outsider: Any  # an annotator of no study
    rival: Any  # a researcher who does not own the study

    def client(self, user: Any) -> Client:
        return api_client(token_for(user))


@pytest.fixture
def lab(db: None) -> Lab:
    owner = factories.researcher("owner")
    annotators = [factories.annotator("ann1"), factories.annotator("ann2")]
    study = factories.open_study_with_answers(owner, model_rows(), annotators, n=4)
    return Lab(
        study=study,
        owner=owner,
        annotators=annotators,
        outsider=factories.annotator("outsider"),
        rival=factories.researcher("rival"),
    )
