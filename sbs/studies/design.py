"""The assignment design: who judges which pair, in which order, with which model on the left.

A pure function of its inputs and a secret key. Sides are balanced two ways: every
annotator sees each model on the left for half of their pairs (differing by at most one),
and across annotators each pair is shown both ways as evenly as the counts allow. Order is
shuffled per annotator. Repeats (a share of each annotator's pairs, shown again with the
sides swapped) come after all first judgments, to measure self-consistency.

Every random choice comes from :class:`KeyedRandom`, a deterministic stream of
HMAC-SHA256(key, counter) blocks. With a secret key (see ``sbs.studies.blinding``) the plan
is reproducible by the server and by no one else: knowing the question file, the ids and
the order one was shown does not narrow down the sides of the other pairs.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from typing import Any


class KeyedRandom(random.Random):
    """``random.Random`` whose bits are HMAC-SHA256(key, n) for n = 0, 1, 2, ...

    A keyed pseudo-random function in counter mode (the construction of HMAC-DRBG without
    reseeding): without the key the stream cannot be predicted from any of its outputs,
    unlike the Mersenne Twister, whose state follows from 624 outputs or a guessable seed.
    ``shuffle``, ``sample`` and ``random`` all draw through :meth:`getrandbits`.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the key must have at least 128 bits")
        self._key = key
        self._counter = 0
        self._pool = 0
        self._pool_bits = 0
        super().__init__(0)  # the base class state is never used

    def seed(self, *args: object, **kwargs: object) -> None:  # noqa: D102
        return None  # the stream is defined by the key alone

    def getstate(self) -> tuple[Any, ...]:
        return (self._key, self._counter, self._pool, self._pool_bits)

    def setstate(self, state: tuple[Any, ...]) -> None:
        key, counter, pool, pool_bits = state
        self._key, self._counter, self._pool, self._pool_bits = key, counter, pool, pool_bits

    def getrandbits(self, k: int) -> int:
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        while self._pool_bits < k:
            block = hmac.new(self._key, self._counter.to_bytes(8, "big"), hashlib.sha256)
            self._counter += 1
            self._pool = (self._pool << 256) | int.from_bytes(block.digest(), "big")
            self._pool_bits += 256
        self._pool_bits -= k
        out = self._pool >> self._pool_bits
        self._pool &= (1 << self._pool_bits) - 1
        return out

    def random(self) -> float:
        return self.getrandbits(53) / (1 << 53)


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
    key: bytes,
) -> list[PlannedAssignment]:
    if not pair_ids or not annotator_ids:
        return []
    rng = KeyedRandom(key)
    pairs = sorted(pair_ids)
    annotators = sorted(annotator_ids)
    rng.shuffle(annotators)  # no public id decides who gets which rotation of sides
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
