"""The study design: which pairs of systems answer which question (:func:`plan_pairs`), then
who judges which pair, in which order, with which system on the left (:func:`plan_assignments`).

Pure functions of their inputs and a secret key. Sides are balanced two ways: every
annotator sees each system on the left for half of their pairs with it (differing by at
most one per pair of systems), and across annotators each pair is shown both ways as evenly
as the counts allow. Order is shuffled per annotator. Repeats (a share of each annotator's
pairs, shown again with the sides swapped) come after all first judgments, to measure
self-consistency.

Every random choice comes from :class:`KeyedRandom`, a deterministic stream of
HMAC-SHA256(key, counter) blocks. With a secret key (see ``sbs.studies.blinding``) the plan
is reproducible by the server and by no one else: knowing the question file, the ids and
the order one was shown does not narrow down the sides of the other pairs.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
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


def system_pairs(n_systems: int) -> list[tuple[int, int]]:
    """Every pair (i, j), i < j, of ``n_systems`` systems: n(n-1)/2 of them."""
    return list(combinations(range(n_systems), 2))


def round_robin(n_systems: int) -> list[tuple[int, int]]:
    """Every pair (i, j), i < j, once, in the rounds of a round-robin tournament (the
    circle method): within a round no system plays twice, so a run of consecutive pairs
    sets as many different systems against each other as it can."""
    m = n_systems + n_systems % 2  # an odd count gets a bye, the player m - 1
    out: list[tuple[int, int]] = []
    for r in range(m - 1):
        games = [(r, m - 1)] + [((r + k) % (m - 1), (r - k) % (m - 1)) for k in range(1, m // 2)]
        out += [(min(g), max(g)) for g in games if max(g) < n_systems]
    return out


def plan_pairs(
    question_ids: Sequence[int], n_systems: int, *, budget: int | None, key: bytes
) -> list[tuple[int, int, int]]:
    """Which systems answer which question side by side: (question id, i, j) with i < j.

    Without a budget, every pair of systems on every question (the complete design).
    With one, a balanced incomplete design of ``budget`` pairs: the questions share them
    out evenly (their counts differ by at most one), and each question takes the next
    pairs of a cyclic round-robin order of the pairs of systems (:func:`round_robin`), so
    every pair of systems is compared equally often (differing by at most one) and a
    question sets different systems against each other where it can. The systems' places
    in that order, the questions' order and the starting point come from ``key`` alone.

    ``budget`` must lie between the number of pairs of systems (each compared at least
    once) and all of them on every question; the caller checks it (:func:`budget_range`).
    """
    questions = sorted(question_ids)
    if budget is None or budget >= len(questions) * len(system_pairs(n_systems)):
        return [(q, i, j) for q in questions for i, j in system_pairs(n_systems)]
    rng = KeyedRandom(key)
    place = list(range(n_systems))
    rng.shuffle(place)
    cycle = [(min(place[i], place[j]), max(place[i], place[j])) for i, j in round_robin(n_systems)]
    rng.shuffle(questions)
    base, extra = divmod(budget, len(questions))
    start = rng.randrange(len(cycle))
    out: list[tuple[int, int, int]] = []
    for k, q in enumerate(questions):
        count = base + (k < extra)  # at most len(cycle): the budget is below the whole
        out += [(q, *cycle[(start + t) % len(cycle)]) for t in range(count)]
        start += count
    return sorted(out)


def budget_range(n_questions: int, n_systems: int) -> tuple[int, int]:
    """The budgets :func:`plan_pairs` takes: at least one question per pair of systems, at
    most every pair of systems on every question."""
    n_pairs = len(system_pairs(n_systems))
    return n_pairs, n_questions * n_pairs


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
    systems: Mapping[int, tuple[int, int]] | None = None,
) -> list[PlannedAssignment]:
    """Each annotator's judgments. ``systems``: pair id -> its two systems (x, y), the
    x of which ``a_on_left`` refers to; None: every pair compares the same two."""
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
        sides = _sides(own, j, flip, systems or {})
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


def _sides(
    own: list[int], j: int, flip: bool, systems: Mapping[int, tuple[int, int]]
) -> dict[int, bool]:
    """Which of their pairs annotator ``j`` sees with x on the left.

    Along the (secretly shuffled) pair order, each pair puts on the left the one of its
    two systems that has been on the left less often so far for this annotator; on a tie
    the sides alternate within each pair of systems, offset by annotator, so neighbours see
    a pair the other way round. With two systems this is plain alternation: half and half.
    """
    lead: dict[int, int] = {}  # system -> times on the left minus times on the right
    shown: dict[tuple[int, int], int] = {}  # pair of systems -> pairs of it seen so far
    sides: dict[int, bool] = {}
    for pair in own:
        x, y = systems.get(pair, (0, 1))
        gap = lead.get(x, 0) - lead.get(y, 0)
        idx = shown.get((x, y), 0)
        shown[(x, y)] = idx + 1
        x_left = gap < 0 if gap else ((idx + j) % 2 == 0) != flip
        sides[pair] = x_left
        lead[x] = lead.get(x, 0) + (1 if x_left else -1)
        lead[y] = lead.get(y, 0) + (-1 if x_left else 1)
    return sides
