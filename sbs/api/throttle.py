"""Failed token attempts, counted per client address (the log-in throttle's buckets).

A request whose bearer token opens nothing counts one failure against its address (an IPv4
address, or the /64 of an IPv6 one, behind ``LOGIN_THROTTLE_PROXY_HOPS`` trusted proxies:
:func:`sbs.accounts.throttle.client_address` and :func:`~sbs.accounts.throttle.address_bucket`).
At :data:`FAILURES_PER_ADDRESS` failures within one window the address is blocked for a
window: every request from it that carries a token is answered 429 without the token being
looked at, so the block tells a guesser nothing and costs the database nothing.

Tokens are 256 random bits, so guessing one is hopeless anyway; the limit keeps a client
with a broken token (or a scanner) from hammering the database. The counters live in
Django's ``default`` cache, as the log-in's do (production: a shared Redis cache).
"""

from __future__ import annotations

import hashlib
import time

from django.core.cache import caches

from sbs.accounts.throttle import WINDOW_SECONDS, address_bucket

FAILURES_PER_ADDRESS = 20

_PREFIX = "sbs:api-token"


def _keys(address: str) -> tuple[str, str]:
    ident = hashlib.sha256(address_bucket(address).encode()).hexdigest()[:32]
    return f"{_PREFIX}:fail:{ident}", f"{_PREFIX}:block:{ident}"


def token_retry_after(*, address: str) -> int:
    """Seconds until this address may try a token again; 0: allowed now."""
    until = caches["default"].get(_keys(address)[1])
    wait = float(until) - time.time() if until is not None else 0.0
    return int(wait) + 1 if wait > 0 else 0


def token_failure_record(*, address: str) -> None:
    """Count one token that opened nothing; the address is blocked at the limit."""
    cache = caches["default"]
    count_key, block_key = _keys(address)
    cache.add(count_key, 0, timeout=WINDOW_SECONDS)
    try:
        failures = cache.incr(count_key)
    except ValueError:  # the window expired between add and incr: a new one starts
        cache.set(count_key, 1, timeout=WINDOW_SECONDS)
        failures = 1
    if failures >= FAILURES_PER_ADDRESS:
        cache.set(block_key, time.time() + WINDOW_SECONDS, timeout=WINDOW_SECONDS)
