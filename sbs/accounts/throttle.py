"""Login throttling: failures are counted per (name, address), per address and per name.

Three counters, each a fixed window that starts at its first failure:

* one user name from one client address: the low limit, the one a person mistyping meets;
* one address, whatever the names: a medium limit, so one place cannot sweep many names;
* one user name, from anywhere: a much higher ceiling, so a distributed attack on one
  account is still capped.

When a counter reaches its limit a block key is written that lasts one window, and every
attempt it covers is refused (HTTP 429) without the password being checked. A refused
attempt counts against its address only, never against the name: a stranger who keeps
trying from one address blocks that address for every name, yet adds at most
``FAILURES_PER_PAIR`` to the name's count, so one stranger cannot lock an account out and
the owner, from an address of their own, logs in at once. A successful login clears the
(name, address) count, never the address's (else one valid account would reset an address
that is guessing others) nor the name's (else the owner's log-in would hand a distributed
attack a fresh budget).

Both log-in forms (``/login/`` and the admin's) count here, with the same keys.

An IPv6 client is counted by its /64 network: one subscriber usually holds a whole /64,
and counting single addresses would give it 2**64 budgets.

Counters live in Django's ``default`` cache. The default cache is in-process memory
(LocMem): with several gunicorn workers each keeps its own counters, so production must
configure a shared cache (Redis) as ``default``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest

FAILURES_PER_PAIR = 5
FAILURES_PER_ADDRESS = 20
FAILURES_PER_USERNAME = 100
WINDOW_SECONDS = 15 * 60

_PREFIX = "sbs:login"


@dataclass(frozen=True)
class _Counter:
    kind: str  # "pair", "addr" or "user"
    ident: str
    limit: int

    @property
    def count_key(self) -> str:
        return f"{_PREFIX}:fail:{self.kind}:{self.ident}"

    @property
    def block_key(self) -> str:
        return f"{_PREFIX}:block:{self.kind}:{self.ident}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def address_bucket(address: str) -> str:
    """What one client is counted as: an IPv4 address, or the /64 of an IPv6 one."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip() or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def _name(username: str) -> str:
    """The name as the log-in form will look it up (Django's ``UsernameField`` applies NFKC,
    so "ａｌｉｃｅ" logs in as "alice"), with case folded: every spelling that reaches one
    account shares its budget of guesses."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def _pair(username: str, address: str) -> _Counter:
    pair = f"{_name(username)}\0{address_bucket(address)}"
    return _Counter("pair", _digest(pair), FAILURES_PER_PAIR)


def _address(address: str) -> _Counter:
    return _Counter("addr", _digest(address_bucket(address)), FAILURES_PER_ADDRESS)


def _user(username: str) -> _Counter:
    # Names and addresses are hashed so that keys stay short and safe for any cache backend.
    return _Counter("user", _digest(_name(username)), FAILURES_PER_USERNAME)


def _counters(username: str, address: str) -> list[_Counter]:
    return [_pair(username, address), _address(address), _user(username)]


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
    return str(forwarded[-hops])


def login_retry_after(*, username: str, address: str) -> int:
    """Seconds until a login may be tried again for this name and address; 0: allowed now."""
    cache = caches["default"]
    now = time.time()
    waits = [
        float(until) - now
        for until in cache.get_many([c.block_key for c in _counters(username, address)]).values()
    ]
    return max([int(w) + 1 for w in waits if w > 0], default=0)


def _count(counter: _Counter) -> None:
    cache = caches["default"]
    cache.add(counter.count_key, 0, timeout=WINDOW_SECONDS)
    try:
        failures = cache.incr(counter.count_key)
    except ValueError:  # the window expired between add and incr: a new one starts
        cache.set(counter.count_key, 1, timeout=WINDOW_SECONDS)
        failures = 1
    if failures >= counter.limit:
        cache.set(counter.block_key, time.time() + WINDOW_SECONDS, timeout=WINDOW_SECONDS)


def login_failure_record(*, username: str, address: str) -> None:
    """Count one wrong password; a counter that reaches its limit blocks for one window."""
    for counter in _counters(username, address):
        _count(counter)


def login_refusal_record(*, address: str) -> None:
    """Count one attempt refused while blocked, against the address alone: an address that
    keeps trying is blocked for every name, and the name it aims at is not locked by it."""
    _count(_address(address))


def login_success_record(*, username: str, address: str) -> None:
    """A correct password for this name from this address: their failure count restarts."""
    caches["default"].delete(_pair(username, address).count_key)
