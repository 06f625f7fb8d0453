"""The secret behind a study's sides and order.

``plan_key = HMAC-SHA256(SECRET_KEY, "sbs/plan/v1/<study id>/<plan salt>/<batch>")``, and
``pairs_key`` the same over ``"sbs/pairs/v1/<study id>/<plan salt>"`` (which systems
answer which question side by side, when not all of them do). The
salt is 256 random bits from :mod:`secrets`, drawn when the study is created and never shown
to annotators; ``SECRET_KEY`` is the deployment's. Either one alone already makes the plan
unguessable, so a public development key (the demo's) still leaves the salt, and a leaked
database still leaves the key. The generation seed and the bootstrap seed stay public: they
only make answers and intervals reproducible.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings


def new_plan_salt() -> str:
    return secrets.token_hex(32)


def plan_key(*, study_id: int, salt: str, batch: int) -> bytes:
    """The key of one planning batch (annotators added together share a batch)."""
    if not salt:
        raise ValueError("a study without a plan salt cannot be planned")
    message = f"sbs/plan/v1/{study_id}/{salt}/{batch}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()


def pairs_key(*, study_id: int, salt: str) -> bytes:
    """The key of a study's pair design (:func:`sbs.studies.design.plan_pairs`)."""
    if not salt:
        raise ValueError("a study without a plan salt cannot be planned")
    message = f"sbs/pairs/v1/{study_id}/{salt}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()
