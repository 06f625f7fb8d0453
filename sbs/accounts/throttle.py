"""Login throttling: after repeated failures per user name and per client address, refuse.

Counters live in Django's ``default`` cache: a fixed window that starts at the first
failure. When a counter reaches its limit a block key is written that lasts one window, and
every attempt for that user name or from that address is refused (HTTP 429) without the
password being checked. A successful login clears the user name's counter, never the
address's (else one valid account would reset an address that is guessing others).

The default cache is in-process memory (LocMem): with several gunicorn workers each keeps
its own counters, so production must configure a shared cache (Redis) as ``default``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest

FAILURES_PER_USERNAME = 5
FAILURES_PER_ADDRESS = 20
WINDOW_SECONDS = 15 * 60

_PREFIX = "sbs:login"


@dataclass(frozen=True)
class _Counter:
    kind: str  # "user" or "addr"
    ident: str
    limit: int

    @property
    def count_key(self) -> str:
        return f"{_PREFIX}:fail:{self.kind}:{self.ident}"

    @property
    def block_key(self) -> str:
        return f"{_PREFIX}:block:{self.kind}:{self.ident}"


def _counters(username: str, address: str) -> list[_Counter]:
    # User names are hashed: the key stays short and safe for any cache backend. Case is
    # folded so that "Ann" and "ann" share one budget of guesses.
    user = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
    return [
        _Counter("user", user, FAILURES_PER_USERNAME),
        _Counter("addr", address or "unknown", FAILURES_PER_ADDRESS),
    ]


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or, behind N trusted proxies, the N-th entry from
    the right of X-Forwarded-For (the entries further left are the client's to forge).

    N is ``settings.LOGIN_THROTTLE_PROXY_HOPS`` (0 when unset).
    """
    hops = int(getattr(settings, "LOGIN_THROTTLE_PROXY_HOPS", 0) or 0)
    remote = request.META.get("REMOTE_ADDR", "") or ""
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < hops:
        return remote
    return forwarded[-hops]


def login_retry_after(*, username: str, address: str) -> int:
    """Seconds until a login may be tried again for this name and address; 0: allowed now."""
    cache = caches["default"]
    now = time.time()
    waits = [
        float(until) - now
        for until in cache.get_many([c.block_key for c in _counters(username, address)]).values()
    ]
    return max([int(w) + 1 for w in waits if w > 0], default=0)


def login_failure_record(*, username: str, address: str) -> None:
    """Count one failed attempt; a counter that reaches its limit blocks for one window."""
    cache = caches["default"]
    for counter in _counters(username, address):
        cache.add(counter.count_key, 0, timeout=WINDOW_SECONDS)
        try:
            failures = cache.incr(counter.count_key)
        except ValueError:  # the window expired between add and incr: a new one starts
            cache.set(counter.count_key, 1, timeout=WINDOW_SECONDS)
            failures = 1
        if failures >= counter.limit:
            cache.set(counter.block_key, time.time() + WINDOW_SECONDS, timeout=WINDOW_SECONDS)


def login_success_record(*, username: str) -> None:
    """A correct password for this name: its failure count starts again."""
    cache = caches["default"]
    user_counter = _counters(username, "")[0]
    cache.delete(user_counter.count_key)
