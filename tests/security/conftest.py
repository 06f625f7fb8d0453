"""Fixtures for the attack tests: a live study, its owner, its annotators and outsiders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import caches

from sbs.studies.models import Study
from tests import factories


@pytest.fixture(autouse=True)
def _fast_passwords_and_fresh_throttle(settings: Any) -> None:
    # Real password checks, with a cheap hash: these tests log in many times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    caches["default"].clear()


@dataclass
class Live:
    study: Study
    owner: Any
    annotators: list[Any]  # in the study
    outsider: Any  # an annotator of no study
    other_researcher: Any  # a researcher who does not own the study


@pytest.fixture
def live(db: None, two_models: Any) -> Live:
    owner = factories.researcher("owner")
    annotators = [factories.annotator("ann1"), factories.annotator("ann2")]
    study = factories.open_study_with_answers(owner, two_models, annotators, n=4)
    return Live(
        study=study,
        owner=owner,
        annotators=annotators,
        outsider=factories.annotator("outsider"),
        other_researcher=factories.researcher("rival"),
    )
