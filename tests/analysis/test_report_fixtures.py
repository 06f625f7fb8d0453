"""Helpers (no tests here): a small voted study for the report and export tests.

Votes go through ``vote_record`` as an annotator's would. Each vote is planned in model
space (which model the annotator prefers) and turned into a screen choice from the side
the assignment shows; the plan is kept so tests can derive the expected numbers without
the code under test.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pytest

from sbs.catalog.models import ModelEntry
from sbs.studies.models import Assignment, Study
from sbs.voting.services import vote_record
from tests import factories

# Intended outcome per (question index * 3 + annotator index) % 6, in model space.
PLAN = ("adapted", "adapted", "original", "tie", "both_bad", "adapted")


@dataclass
class VotedStudy:
    study: Study
    owner: Any
    annotators: list[Any]
    # assignment id -> (question external id, annotator username, intended outcome, repeat)
    planned: dict[int, tuple[str, str, str, bool]] = field(default_factory=dict)

    @property
    def adapted(self) -> str:
        return self.study.model_b.name

    @property
    def original(self) -> str:
        return self.study.model_a.name

    def first_outcomes(self) -> list[str]:
        return [o for (_, _, o, rep) in self.planned.values() if not rep]


def screen_choice(assignment: Assignment, outcome: str, adapted: str) -> str:
    """The button an annotator presses to express ``outcome`` on this assignment's screen."""
    if outcome in ("tie", "both_bad"):
        return outcome
    winner_on_left = (assignment.left_model.name == adapted) == (outcome == "adapted")
    return "left" if winner_on_left else "right"


@pytest.fixture
def fast_users(settings: Any) -> None:
    """Cheap password hashing: these tests make several users and never test passwords."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def model_rows() -> tuple[ModelEntry, ModelEntry]:
    """Two model entries without files: the analysis reads names and answers, never weights."""
    return tuple(  # type: ignore[return-value]
        ModelEntry.objects.create(
            name=name,
            kind=ModelEntry.Kind.HF_FOLDER,
            path=f"/nowhere/{name}",
            sha256=hashlib.sha256(name.encode()).hexdigest(),
        )
        for name in ("Original-SmolTiny", "Adapted-RuTiny")
    )


def make_voted_study(*, n: int = 8, repeat_share: float = 0.25) -> VotedStudy:
    """Three annotators (two with Cyrillic names) vote on every pair, repeats included."""
    two_models = model_rows()
    owner = factories.researcher()
    annotators = [factories.annotator(name) for name in ("анна", "boris", "вера")]
    study = factories.open_study_with_answers(
        owner, two_models, annotators, n=n, repeat_share=repeat_share
    )
    voted = VotedStudy(study=study, owner=owner, annotators=annotators)
    for k, user in enumerate(annotators):
        assignments = Assignment.objects.filter(pair__study=study, annotator=user).select_related(
            "pair__question", "left_model"
        )
        for a in assignments.order_by("order"):
            q = int(a.pair.question.external_id[1:])
            outcome = PLAN[(q * 3 + k) % 6]
            repeat = a.repeat_of_id is not None
            if repeat and k == 0:
                outcome = "both_bad"  # the first annotator changes their mind on repeats
            vote_record(
                annotator=user,
                assignment_id=a.pk,
                choice=screen_choice(a, outcome, voted.adapted),
                seconds_on_page=10.0 + q + k,
                comment=f"комментарий {q}",
            )
            voted.planned[a.pk] = (a.pair.question.external_id, user.username, outcome, repeat)
    return voted


def cast(voted: VotedStudy, user: Any, outcome: str) -> int:
    """Change ``user``'s first vote on their first pair to ``outcome``; returns the assignment."""
    a = (
        Assignment.objects.filter(pair__study=voted.study, annotator=user, repeat_of__isnull=True)
        .select_related("left_model", "pair__question")
        .order_by("order")
        .first()
    )
    assert a is not None
    vote_record(
        annotator=user,
        assignment_id=a.pk,
        choice=screen_choice(a, outcome, voted.adapted),
        seconds_on_page=5.0,
        change=True,
    )
    q, name, _old, rep = voted.planned[a.pk]
    voted.planned[a.pk] = (q, name, outcome, rep)
    return a.pk
