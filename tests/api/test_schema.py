"""The OpenAPI schema at /api/openapi.json: valid JSON, every route of the API in it with
its methods, and every operation with its bearer authentication."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.security.urlwalk import api_endpoints

pytestmark = pytest.mark.django_db

SCHEMA = "/api/openapi.json"
ANY_ACCOUNT = {"/api/me", "/api/annotate/"}


def _schema() -> dict:
    response = Client().get(SCHEMA)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    return json.loads(response.content)


def _schema_path(route: str) -> str:
    """The walk's Django route ("api/studies/<int:study_id>") as the schema writes it."""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def test_the_schema_is_served_without_a_token_at_its_documented_address():
    assert reverse("api:openapi-json") == SCHEMA
    schema = _schema()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "sbs API"
    assert "Authorization: Bearer" in schema["info"]["description"]


def test_every_api_route_is_in_the_schema_with_its_methods():
    paths = _schema()["paths"]
    routes = {
        e.route for e in api_endpoints() if e.name not in ("api:openapi-json", "api:api-root")
    }
    assert len(routes) >= 20
    assert {_schema_path(r) for r in routes} == set(paths)
    operations = {(p, m) for p, ops in paths.items() for m in ops}
    expected = {
        ("/api/question-sets", "post"), ("/api/models", "post"), ("/api/studies", "post"),
        ("/api/studies/{study_id}/start", "post"), ("/api/studies/{study_id}/annotators", "post"),
        ("/api/studies/{study_id}/results", "get"), ("/api/studies/{study_id}/exports/{fmt}", "get"),
        ("/api/annotate/studies/{study_id}", "get"), ("/api/annotate/studies/{study_id}/votes", "post"),
        ("/api/annotate/studies/{study_id}/votes/{assignment_id}", "put"),
        ("/api/studies/{study_id}/votes", "get"), ("/api/models/{model_id}", "get"),
    }  # fmt: skip
    assert expected <= operations


def test_every_operation_names_its_bearer_authentication():
    schema = _schema()
    schemes = schema["components"]["securitySchemes"]
    assert schemes == {
        "ResearcherToken": {"type": "http", "scheme": "bearer"},
        "AccountToken": {"type": "http", "scheme": "bearer"},
    }
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            wanted = "AccountToken" if path.startswith(tuple(ANY_ACCOUNT)) else "ResearcherToken"
            assert op.get("security") == [{wanted: []}], f"{method.upper()} {path}"
            assert op["operationId"] and op["responses"], f"{method.upper()} {path}"


def test_operation_ids_are_unique_and_name_the_url():
    ids = [op["operationId"] for ops in _schema()["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert "study_create" in ids and "annotate_vote" in ids


def test_the_api_root_is_a_json_404_that_points_at_the_schema():
    response = Client().get("/api/")
    assert response.status_code == 404
    assert response.json()["schema"].endswith(SCHEMA)
