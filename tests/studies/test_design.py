from collections import Counter, defaultdict

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sbs.studies.design import (
    KeyedRandom,
    budget_range,
    plan_assignments,
    plan_pairs,
    round_robin,
    system_pairs,
)

KEY = b"k" * 32


@pytest.mark.parametrize("n_pairs,n_annot", [(78, 15), (10, 3), (7, 4)])
def test_every_annotator_sees_each_model_left_half_the_time(n_pairs, n_annot):
    plan = plan_assignments(list(range(1, n_pairs + 1)), list(range(100, 100 + n_annot)),
                            judgments_per_pair=None, repeat_share=0.0, key=KEY)  # fmt: skip
    assert len(plan) == n_pairs * n_annot
    per_annot = defaultdict(list)
    for p in plan:
        per_annot[p.annotator_id].append(p)
    for items in per_annot.values():
        assert {p.pair_id for p in items} == set(range(1, n_pairs + 1))
        lefts = sum(p.a_on_left for p in items)
        assert abs(lefts - (n_pairs - lefts)) <= 1
        assert sorted(p.order for p in items) == list(range(n_pairs))


def test_each_pair_is_shown_both_ways_across_annotators():
    plan = plan_assignments(list(range(78)), list(range(15)), judgments_per_pair=None,
                            repeat_share=0.0, key=KEY)  # fmt: skip
    per_pair = Counter(p.pair_id for p in plan if p.a_on_left)
    assert all(7 <= per_pair[pair] <= 8 for pair in range(78))


def test_order_is_shuffled_per_annotator_and_reproducible():
    args = (list(range(30)), [1, 2])
    a = plan_assignments(*args, judgments_per_pair=None, repeat_share=0, key=KEY)
    b = plan_assignments(*args, judgments_per_pair=None, repeat_share=0, key=KEY)
    assert a == b
    order = {ann: [p.pair_id for p in sorted((p for p in a if p.annotator_id == ann), key=lambda p: p.order)] for ann in (1, 2)}  # fmt: skip
    assert order[1] != order[2] and order[1] != sorted(order[1])


def test_judgments_per_pair_limits_and_balances_load():
    plan = plan_assignments(list(range(20)), list(range(6)), judgments_per_pair=3,
                            repeat_share=0, key=KEY)  # fmt: skip
    per_pair = Counter(p.pair_id for p in plan)
    assert set(per_pair.values()) == {3}
    loads = Counter(p.annotator_id for p in plan)
    assert max(loads.values()) - min(loads.values()) <= 1
    assert len({(p.pair_id, p.annotator_id) for p in plan}) == len(plan)


def test_repeats_come_last_with_sides_swapped():
    plan = plan_assignments(
        list(range(20)), [1], judgments_per_pair=None, repeat_share=0.2, key=KEY
    )
    first = {p.pair_id: p for p in plan if not p.repeat_of_pair}
    repeats = [p for p in plan if p.repeat_of_pair]
    assert len(repeats) == 4
    for r in repeats:
        assert r.a_on_left != first[r.pair_id].a_on_left
        assert r.order >= 20


def test_keyed_random_is_a_function_of_the_key_alone():
    a, b, c = KeyedRandom(b"a" * 32), KeyedRandom(b"a" * 32), KeyedRandom(b"b" * 32)
    xs = [a.getrandbits(64) for _ in range(8)]
    assert xs == [b.getrandbits(64) for _ in range(8)]
    assert xs != [c.getrandbits(64) for _ in range(8)]
    a.seed(123)  # the base class's seeding cannot reset or replace the stream
    assert a.getrandbits(64) == b.getrandbits(64)
    with pytest.raises(ValueError):
        KeyedRandom(b"short")


def test_keyed_random_draws_uniformly():
    # Chi-square goodness of fit of 12,000 draws of randrange(6); 5 dof, 0.1% critical 20.5.
    rng = KeyedRandom(b"u" * 32)
    counts = Counter(rng.randrange(6) for _ in range(12_000))
    chi2 = sum((counts[i] - 2000) ** 2 / 2000 for i in range(6))
    assert chi2 < 20.5
    floats = [rng.random() for _ in range(2000)]
    assert all(0.0 <= x < 1.0 for x in floats) and 0.45 < sum(floats) / 2000 < 0.55


# --- studies of N systems: which pairs of systems answer which question ---------------------


def _balance(plan, systems):
    """Per annotator and system: times on the left minus times on the right; per pair: the
    same for its x across annotators."""
    lead = defaultdict(Counter)
    per_pair = Counter()
    for p in plan:
        x, y = systems[p.pair_id]
        lead[p.annotator_id][x] += 1 if p.a_on_left else -1
        lead[p.annotator_id][y] -= 1 if p.a_on_left else -1
        per_pair[p.pair_id] += 1 if p.a_on_left else -1
    return lead, per_pair


def test_without_a_budget_every_pair_of_systems_answers_every_question():
    planned = plan_pairs([5, 6, 7], 4, budget=None, key=KEY)
    assert planned == [(q, i, j) for q in (5, 6, 7) for i, j in system_pairs(4)]
    assert len(planned) == 3 * 6
    assert plan_pairs([5, 6], 2, budget=None, key=KEY) == [(5, 0, 1), (6, 0, 1)]  # two: as before


@settings(max_examples=60, deadline=None)
@given(
    n_questions=st.integers(1, 40),
    n_systems=st.integers(2, 12),
    data=st.data(),
)
def test_a_budget_shares_pairs_evenly_over_questions_and_pairs_of_systems(
    n_questions, n_systems, data
):
    low, high = budget_range(n_questions, n_systems)
    assume(low <= high)
    budget = data.draw(st.integers(low, high))
    planned = plan_pairs(list(range(100, 100 + n_questions)), n_systems, budget=budget, key=KEY)
    assert len(planned) == budget == len(set(planned))
    assert all(0 <= i < j < n_systems for _q, i, j in planned)
    per_question = Counter(q for q, _i, _j in planned)
    per_question.update({q: 0 for q in range(100, 100 + n_questions)})
    assert max(per_question.values()) - min(per_question.values()) <= 1
    per_pair = Counter((i, j) for _q, i, j in planned)
    assert set(per_pair) == set(system_pairs(n_systems))  # every pair of systems compared
    assert max(per_pair.values()) - min(per_pair.values()) <= 1
    per_system = Counter(s for _q, i, j in planned for s in (i, j))
    assert max(per_system.values()) - min(per_system.values()) <= n_systems - 1


def test_which_question_gets_which_systems_follows_from_the_secret_key():
    questions = list(range(78))
    a = plan_pairs(questions, 6, budget=100, key=KEY)
    assert a == plan_pairs(questions, 6, budget=100, key=KEY)
    assert a != plan_pairs(questions, 6, budget=100, key=b"other key, 32 bytes long......")


@pytest.mark.parametrize(
    "n_systems,n_questions,budget,per_pair,n_annotators",
    [(3, 78, None, None, 15), (5, 30, None, None, 4), (12, 78, 200, 3, 15), (5, 78, 100, None, 15),
     (4, 10, None, 2, 7)],
)  # fmt: skip
def test_each_annotator_sees_each_system_on_both_sides_alike(
    n_systems, n_questions, budget, per_pair, n_annotators
):
    planned = plan_pairs(list(range(n_questions)), n_systems, budget=budget, key=KEY)
    systems = {pk: (i, j) for pk, (_q, i, j) in enumerate(planned)}
    plan = plan_assignments(list(systems), list(range(100, 100 + n_annotators)),
                            judgments_per_pair=per_pair, repeat_share=0.0, key=KEY,
                            systems=systems)  # fmt: skip
    lead, per_pair_lead = _balance(plan, systems)
    assert max(abs(v) for counts in lead.values() for v in counts.values()) <= 2
    assert max(abs(v) for v in per_pair_lead.values()) <= 2
    # the first system is not always the one on the left (the old a_on_left rotation's risk)
    assert 0.4 <= sum(p.a_on_left for p in plan) / len(plan) <= 0.6


@pytest.mark.parametrize("n", range(2, 13))
def test_the_round_robin_order_holds_every_pair_once_in_rounds_without_repeats(n):
    order = round_robin(n)
    assert sorted(order) == system_pairs(n)
    per_round = n // 2  # pairs in a round; an odd count leaves one system out each round
    for r in range(0, len(order), per_round):
        played = [s for pair in order[r : r + per_round] for s in pair]
        assert len(played) == len(set(played))
