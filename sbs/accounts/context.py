from typing import Any

from django.http import HttpRequest

from sbs.accounts.roles import is_researcher


def roles(request: HttpRequest) -> dict[str, Any]:
    return {"is_researcher": is_researcher(request.user)}
