from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from sbs.accounts.roles import is_researcher


def roles(request: HttpRequest) -> dict[str, Any]:
    """``is_researcher`` for the menu, asked of the database only if a template reads it."""
    return {"is_researcher": SimpleLazyObject(lambda: is_researcher(request.user))}
