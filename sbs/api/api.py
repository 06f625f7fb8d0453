"""The HTTP API: ``/api/``, its schema at ``/api/openapi.json``.

Every route authenticates with ``Authorization: Bearer <token>`` (a personal token from the
API tokens page or ``manage.py create_api_token``); the annotator's routes and ``/me`` take
any account's token, every other route a researcher's. The endpoints are thin: they call
the same forms, services and selectors as the pages, with the same access rules (a study is
its owner's: anyone else gets 404, as on the pages).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Router
from ninja.operation import Operation

from sbs.accounts.roles import is_researcher
from sbs.api import errors
from sbs.api.auth import AccountToken, ResearcherToken, caller
from sbs.api.routers import annotate, models, questions, results, studies
from sbs.api.schemas import MeOut

DESCRIPTION = """Side-by-side evaluation from scripts: question sets, models, studies,
annotators, votes, results and exports. Authenticate every request with
`Authorization: Bearer TOKEN` (create a token on the API tokens page, or with
`python manage.py create_api_token USER`). Researchers use every route; annotators use
`/me` and `/annotate/...`, which never reveal which model wrote which answer."""


class SbsAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        return operation.view_func.__name__  # the URL name too: unique across the API


api = SbsAPI(
    title="sbs API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    docs_url=None,  # the Swagger page loads scripts from a CDN; the schema is enough
    auth=ResearcherToken(),
)
errors.install(api)

me_router = Router(tags=["account"], auth=AccountToken())


@me_router.get("", response=MeOut, url_name="me")
def me(request: HttpRequest) -> dict[str, Any]:
    """The account the token belongs to, and whether it is a researcher's."""
    user = caller(request)
    return {"id": user.pk, "username": user.username, "researcher": is_researcher(user)}


api.add_router("/me", me_router)
api.add_router("/question-sets", questions.router)
api.add_router("/models", models.router)
api.add_router("/studies", studies.router)
api.add_router("/studies", results.router)
api.add_router("/annotate", annotate.router)


def _root(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    """``/api/`` itself: a JSON 404 naming the schema (ninja's own raises a 404 whose
    technical page, with DEBUG on, would list every URL of the site)."""
    return JsonResponse(
        {"detail": _("Not found."), "schema": request.build_absolute_uri("openapi.json")},
        status=404,
    )


def urls() -> tuple[list[URLResolver | URLPattern], str, str]:
    """The API's URL patterns for ``include``-style use: ``path("api/", api_urls())``."""
    patterns, app_name, namespace = api.urls
    patterns = [
        path("", _root, name="api-root")
        if isinstance(p, URLPattern) and p.name == "api-root"
        else p
        for p in patterns
    ]
    return patterns, app_name, namespace
