"""The "shown" stamp of a vote screen: a signed (assignment, time shown) pair, so the server
measures how long a pair was on screen and a vote cannot be sent for a pair it never showed.
The vote page and the API hand it out and check it the same way."""

from __future__ import annotations

import time

from django.core import signing
from django.utils.translation import gettext as _

from sbs.voting.services import VoteError

_SHOWN_SALT = "sbs.voting.shown"
MAX_AGE_SECONDS = 7 * 24 * 3600


def shown_token(assignment_id: int) -> str:
    """``signing.dumps([assignment_id, now])`` under the vote screens' salt."""
    return signing.dumps([assignment_id, time.time()], salt=_SHOWN_SALT)


def seconds_on_page(token: str, assignment_id: int) -> float:
    """Seconds since the stamp was issued; a VoteError for a forged, stale or foreign stamp."""
    try:
        shown_id, shown_at = signing.loads(token, salt=_SHOWN_SALT, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:
        raise VoteError(_("The page expired; please vote again.")) from None
    if shown_id != assignment_id:
        raise VoteError(_("The page does not match this pair."))
    return max(0.0, time.time() - float(shown_at))
