"""Sides and order come from a secret: public information does not reproduce them.

The attack of the first review: an annotator knows the question file (the demo set is
public), the study seed (0 by default) and roughly the account ids, sees the first six
questions in the order shown, and brute-forces the plan's seed to learn the sides of every
other pair. Here the attacker tries the old recipe ``Random(seed * 1_000_003 + min id)`` over
thousands of seeds and finds nothing, and two installs that do the same public actions with
different secrets get different sides.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.test import override_settings

from sbs.catalog.models import ModelEntry
from sbs.studies import services
from sbs.studies.models import Assignment, Study
from tests import factories

pytestmark = pytest.mark.django_db


def _models() -> tuple[ModelEntry, ModelEntry]:
    def entry(name: str) -> ModelEntry:
        return ModelEntry.objects.get_or_create(
            name=name, defaults={"kind": "hf_folder", "path": name, "sha256": "a" * 64}
        )[0]

    return entry("Model-A"), entry("Model-B")


def _open_study(annotators: list[Any], *, salt: str | None = None, n: int = 20) -> Study:
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.filter(username="res").first() or factories.researcher()
    models = _models()
    qset = factories.question_set(n, name=f"qs-{Study.objects.count()}")
    study = services.study_create(
        owner=owner, name=f"s-{qset.name}", question_set=qset, model_a=models[0], model_b=models[1]
    )
    if salt is not None:
        Study.objects.filter(pk=study.pk).update(plan_salt=salt)
        study.refresh_from_db()
    study.annotators.add(*annotators)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.GENERATING)
    from sbs.studies.models import GenerationRun

    for m in models:
        GenerationRun.objects.create(study=study, model=m, status="done", total_count=n)
    assert services.study_open_if_ready(study_id=study.pk)
    return study


def _shown(study: Study, user: Any) -> list[tuple[int, bool]]:
    """(question position, model A on the left) in the order the annotator is shown them."""
    rows = Assignment.objects.filter(pair__study=study, annotator=user, repeat_of=None)
    return [
        (a.pair.question.position, a.left_model_id == study.model_a_id)
        for a in rows.select_related("pair__question").order_by("order")
    ]


def _old_plan(pair_ids: list[int], annotator_ids: list[int], seed: int) -> dict[int, bool]:
    """The previous recipe, as an attacker would rerun it: pair -> A on the left (annotator 0)."""
    rng = random.Random(seed)
    pairs = sorted(pair_ids)
    annotators = sorted(annotator_ids)
    rng.shuffle(pairs)
    flip = rng.random() < 0.5
    own = pairs  # every annotator judges every pair
    sides = {pair: ((idx + 0) % 2 == 0) != flip for idx, pair in enumerate(own)}
    order = own[:]
    rng.shuffle(order)
    return {"order": order, "sides": sides, "first": annotators[0]}  # type: ignore[dict-item]


def test_brute_force_over_public_seeds_recovers_nothing():
    users = [factories.annotator(f"ann{i}") for i in range(3)]
    study = _open_study(users, n=20)
    victim = min(users, key=lambda u: u.pk)  # the annotator the old recipe put first
    shown = _shown(study, victim)
    pair_of = dict(study.pairs.values_list("question__position", "pk"))
    pair_ids = sorted(pair_of.values())
    ids = [u.pk for u in users]
    first_six = [pair_of[pos] for pos, _ in shown[:6]]
    matches = []
    for guess in range(3000):  # study seeds 0..2 x offsets near the known ids
        seed = (guess // 1000) * 1_000_003 + min(ids) + (guess % 1000) - 500
        plan = _old_plan(pair_ids, ids, seed)
        if plan["order"][:6] == first_six:
            matches.append(plan)
    assert matches == [], "the order shown was reproduced from public information"


def test_same_public_actions_with_different_secrets_give_different_sides():
    """Two installs, same question file, same ids, same study id: only the secrets differ."""
    from sbs.studies.blinding import plan_key
    from sbs.studies.design import plan_assignments

    def sides(secret_key: str, salt: str) -> list[tuple[int, int, bool, int]]:
        with override_settings(SECRET_KEY=secret_key):
            key = plan_key(study_id=1, salt=salt, batch=2)
        plan = plan_assignments(list(range(1, 79)), list(range(2, 17)),
                                judgments_per_pair=None, repeat_share=0.0, key=key)  # fmt: skip
        return [(p.pair_id, p.annotator_id, p.a_on_left, p.order) for p in plan]

    salt = "5" * 64
    first = sides("install-one-secret-key-0123456789abcdef", salt)
    assert first == sides("install-one-secret-key-0123456789abcdef", salt)  # reproducible
    second = sides("install-two-secret-key-0123456789abcdef", salt)
    third = sides("install-one-secret-key-0123456789abcdef", "6" * 64)  # same key, new salt
    for other in (second, third):
        same_side = sum(x[2] == y[2] for x, y in zip(first, other, strict=True))
        assert 0.4 < same_side / len(first) < 0.6  # sides agree by chance only


def test_the_same_annotators_in_three_studies_get_three_plans():
    users = [factories.annotator(f"u{i}") for i in range(4)]
    plans = []
    for _ in range(3):
        study = _open_study(users)
        plans.append([_shown(study, u) for u in users])
    assert plans[0] != plans[1] != plans[2] != plans[0]
    for plan in plans:  # each annotator still sees model A on the left half the time
        for shown in plan:
            lefts = sum(a_left for _, a_left in shown)
            assert abs(2 * lefts - len(shown)) <= 1


def test_the_server_can_reproduce_its_own_plan():
    from sbs.studies.blinding import plan_key
    from sbs.studies.design import plan_assignments

    users = [factories.annotator(f"r{i}") for i in range(3)]
    study = _open_study(users, n=10)
    again = plan_assignments(
        list(study.pairs.values_list("pk", flat=True)),
        [u.pk for u in users],
        judgments_per_pair=None,
        repeat_share=0.0,
        key=plan_key(study_id=study.pk, salt=study.plan_salt, batch=min(u.pk for u in users)),
    )
    stored = {
        (a.pair_id, a.annotator_id): (a.left_model_id == study.model_a_id, a.order)
        for a in Assignment.objects.filter(pair__study=study)
    }
    assert stored == {(p.pair_id, p.annotator_id): (p.a_on_left, p.order) for p in again}


def test_every_study_gets_its_own_salt_and_no_page_shows_it(client):
    users = [factories.annotator("salt-viewer")]
    one, two = _open_study(users, n=4), _open_study([factories.annotator("x2")], n=4)
    assert len(one.plan_salt) == 64 and one.plan_salt != two.plan_salt
    client.force_login(users[0])
    page = client.get(f"/annotate/{one.pk}/").content.decode()
    assert one.plan_salt not in page
