from collections import Counter, defaultdict

import pytest

from sbs.studies.design import KeyedRandom, plan_assignments

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
