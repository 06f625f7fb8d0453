"""The assignment design: who judges which pair, in which order, with which model on the left.

Pure function of its inputs and the seed. Sides are balanced two ways: every annotator sees
each model on the left for half of their pairs (differing by at most one), and across
annotators each pair is shown both ways as evenly as the counts allow. Order is shuffled per
annotator. Repeats (a share of each annotator's pairs, shown again with the sides swapped)
come after all first judgments, to measure self-consistency.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class PlannedAssignment:
    pair_id: int
    annotator_id: int
    a_on_left: bool
    order: int
    repeat_of_pair: bool = False  # True: a second showing of this pair, sides swapped


def plan_assignments(
    pair_ids: list[int],
    annotator_ids: list[int],
    *,
    judgments_per_pair: int | None,
    repeat_share: float,
    seed: int,
) -> list[PlannedAssignment]:
    if not pair_ids or not annotator_ids:
        return []
    rng = random.Random(seed)
    pairs = sorted(pair_ids)
    annotators = sorted(annotator_ids)
    n = len(annotators)
    k = n if judgments_per_pair is None else min(judgments_per_pair, n)
    rng.shuffle(pairs)

    # Round-robin: pair i goes to annotators i*k .. i*k+k-1 (mod n): equal loads +-1.
    per_annotator: dict[int, list[int]] = {a: [] for a in annotators}
    for i, pair in enumerate(pairs):
        for t in range(k):
            per_annotator[annotators[(i * k + t) % n]].append(pair)

    planned: list[PlannedAssignment] = []
    flip = rng.random() < 0.5
    for j, annotator in enumerate(annotators):
        own = per_annotator[annotator]
        # Alternate sides along the (secretly shuffled) pair order, offset by annotator:
        # each annotator gets half and half, and neighbours see a pair the other way round.
        sides = {pair: ((idx + j) % 2 == 0) != flip for idx, pair in enumerate(own)}
        order = own[:]
        rng.shuffle(order)
        for position, pair in enumerate(order):
            planned.append(PlannedAssignment(pair, annotator, sides[pair], position))
        repeats = round(len(own) * repeat_share)
        for extra, pair in enumerate(rng.sample(own, repeats)):
            planned.append(
                PlannedAssignment(pair, annotator, not sides[pair], len(order) + extra, True)
            )
    return planned
