"""Who calls the API: ``Authorization: Bearer <token>``, nothing else.

The session cookie never authenticates an API call (a logged-in browser that calls the API
is anonymous to it), so no API call can be forged from another site and the API needs no
CSRF token. A token that opens nothing counts against its client address
(:mod:`sbs.api.throttle`); a blocked address is answered 429 before any token is looked at.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.errors import AuthorizationError
from ninja.security import HttpBearer

from sbs.accounts.roles import is_researcher
from sbs.accounts.throttle import client_address
from sbs.api import services
from sbs.api.throttle import token_failure_record, token_retry_after


class TooManyAttempts(Exception):
    """Too many tokens from this address opened nothing; ``retry_after`` in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class AccountToken(HttpBearer):
    """A token of any active account: the annotator's part of the API, and ``/me``."""

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        address = client_address(request)
        wait = token_retry_after(address=address)
        if wait:
            raise TooManyAttempts(wait)
        user = services.token_user(token=token)
        if user is None:
            token_failure_record(address=address)
            return None
        return self.admit(user)

    def admit(self, user: User) -> User:
        return user


class ResearcherToken(AccountToken):
    """A researcher's token: every other route. An annotator's token gets 403 (the route
    list is public in the schema, so there is no page existence to hide)."""

    def admit(self, user: User) -> User:
        if not is_researcher(user):
            raise AuthorizationError(message=_("This part of the API is for researchers."))
        return user


def caller(request: HttpRequest) -> User:
    """The account whose token authenticated this request (never the session's)."""
    user = getattr(request, "auth", None)
    if not isinstance(user, User):  # an endpoint reached without its auth: a wiring bug
        raise RuntimeError("API endpoint called without token authentication")
    return user
