"""Studies through the API: the studies and annotators pages' forms and services."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from sbs.accounts import services as account_services
from sbs.accounts.models import Invite
from sbs.studies.models import GenerationRun, Study
from sbs.voting.services import vote_record
from tests import factories
from tests.analysis.test_report_fixtures import model_rows
from tests.api.conftest import api_client, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    owner = factories.researcher("owner")
    qset = factories.question_set(3, name="qs")
    a, b = model_rows()
    return owner, api_client(token_for(owner)), qset, a, b


def _body(qset, a, b, **kw):
    return {"name": "Через API", "question_set": qset.pk, "model_a": a.pk, "model_b": b.pk, **kw}


def test_a_study_created_through_the_api_is_the_one_the_page_creates(setup):
    owner, api, qset, a, b = setup
    response = api.post(
        "/api/studies", _body(qset, a, b, temperature=0.5, seed=7), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["model_b"] == {"id": b.pk, "name": b.name}
    page = Client()
    page.force_login(owner)
    page.post(
        reverse("studies:list"),
        {"name": "Со страницы", "question_set": qset.pk, "model_a": a.pk, "model_b": b.pk,
         "max_new_tokens": 96, "min_new_tokens": 0, "temperature": 0.5, "seed": 7,
         "use_chat_template": "on", "batch_size": 16, "repeat_share": 0,
         "form_token": "page-form-token-0123456789"},
    )  # fmt: skip
    from_page = Study.objects.get(name="Со страницы")
    from_api = Study.objects.get(pk=body["id"])
    assert from_api.generation == from_page.generation == body["generation"]
    assert (from_api.seed, from_api.owner) == (from_page.seed, owner)
    listed = [s["id"] for s in api.get("/api/studies").json()]
    assert listed == [from_page.pk, from_api.pk]  # newest first


def test_an_idempotency_key_makes_a_retried_create_harmless(setup):
    _owner, api, qset, a, b = setup
    key = {"HTTP_IDEMPOTENCY_KEY": "retry-key-0123456789"}
    first = api.post("/api/studies", _body(qset, a, b), content_type="application/json", **key)
    again = api.post("/api/studies", _body(qset, a, b), content_type="application/json", **key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Study.objects.count() == 1
    short = api.post(
        "/api/studies", _body(qset, a, b, name="other"), content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="short",
    )  # fmt: skip
    assert short.status_code == 400 and "Idempotency-Key" in short.json()["detail"]


def test_the_forms_checks_refuse_a_bad_study_with_field_errors(setup):
    _owner, api, qset, a, b = setup
    same = api.post("/api/studies", _body(qset, a, a), content_type="application/json").json()
    assert same["errors"]["__all__"] == ["Choose each system once."]
    bounds = api.post(
        "/api/studies", _body(qset, a, b, repeat_share=0.9, max_new_tokens=0),
        content_type="application/json",
    ).json()  # fmt: skip
    assert set(bounds["errors"]) == {"repeat_share", "max_new_tokens"}
    missing = api.post("/api/studies", _body(qset, a, b, question_set=999999),
                       content_type="application/json").json()  # fmt: skip
    assert "question_set" in missing["errors"]
    assert (
        api.post("/api/studies", _body(qset, a, b), content_type="application/json").status_code
        == 201
    )
    twin = api.post("/api/studies", _body(qset, a, b), content_type="application/json")
    assert twin.status_code == 400 and "Через API" in twin.json()["detail"]
    assert Study.objects.count() == 1


def test_a_study_is_its_owners_alone(setup):
    _owner, api, qset, a, b = setup
    study = api.post("/api/studies", _body(qset, a, b), content_type="application/json").json()
    rival = api_client(token_for(factories.researcher("rival")))
    assert rival.get("/api/studies").json() == []
    assert rival.get(f"/api/studies/{study['id']}").status_code == 404
    assert rival.post(f"/api/studies/{study['id']}/start").status_code == 404
    assert Study.objects.get(pk=study["id"]).status == "draft"


def test_annotators_are_added_by_name_with_invite_links_that_work(setup):
    owner, api, qset, a, b = setup
    study = api.post("/api/studies", _body(qset, a, b), content_type="application/json").json()
    factories.annotator("existing-one")
    url = f"/api/studies/{study['id']}/annotators"
    response = api.post(
        url, {"existing": ["existing-one"], "names": ["Анна Петрова", "boris"]},
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["added"] == 3
    assert [i["username"] for i in body["invites"]] == ["Анна_Петрова", "boris"]
    for invite in body["invites"]:
        assert invite["link"].startswith("http://testserver/invite/#")
        token = invite["link"].split("#", 1)[1]
        assert account_services.invite_pending(token=token).user.username == invite["username"]
    rows = api.get(url).json()
    assert {r["username"]: r["invite"] for r in rows} == {
        "existing-one": "password", "Анна_Петрова": "invited", "boris": "invited"
    }  # fmt: skip

    refused = api.post(url, {"existing": ["owner", "nobody"]}, content_type="application/json")
    assert refused.status_code == 400
    assert "nobody" in refused.json()["detail"] or "owner" in refused.json()["detail"]
    empty = api.post(url, {}, content_type="application/json")
    assert empty.status_code == 400 and "Choose accounts" in empty.json()["detail"]


def test_a_retried_add_creates_no_second_account(setup):
    _owner, api, qset, a, b = setup
    study = api.post("/api/studies", _body(qset, a, b), content_type="application/json").json()
    url, key = f"/api/studies/{study['id']}/annotators", "add-key-0123456789abc"
    first = api.post(url, {"names": ["vera"]}, content_type="application/json",
                     HTTP_IDEMPOTENCY_KEY=key)  # fmt: skip
    again = api.post(url, {"names": ["vera"]}, content_type="application/json",
                     HTTP_IDEMPOTENCY_KEY=key)  # fmt: skip
    assert (first.status_code, again.status_code) == (201, 409)
    assert [r["username"] for r in api.get(url).json()] == ["vera"]


def test_invite_links_are_reissued_revoked_and_annotators_removed(setup):
    _owner, api, qset, a, b = setup
    study = api.post("/api/studies", _body(qset, a, b), content_type="application/json").json()
    url = f"/api/studies/{study['id']}/annotators"
    made = api.post(url, {"names": ["gleb", "dina"]}, content_type="application/json").json()
    gleb, dina = made["invites"]
    old = gleb["link"].split("#", 1)[1]
    new = api.post(f"{url}/{gleb['id']}/invite").json()
    assert new["username"] == "gleb" and new["link"] != gleb["link"]
    assert not Invite.objects.filter(token_sha256=account_services.token_digest(old)).exists()
    assert api.delete(f"{url}/{gleb['id']}/invite").json() == {"revoked": True}
    assert api.delete(f"{url}/{gleb['id']}/invite").json() == {"revoked": False}
    assert api.delete(f"{url}/{dina['id']}").status_code == 204
    assert [r["username"] for r in api.get(url).json()] == ["gleb"]
    assert api.delete(f"{url}/{dina['id']}").status_code == 404  # no longer in the study
    stranger = factories.annotator("stranger")
    assert api.post(f"{url}/{stranger.pk}/invite").status_code == 404


def test_start_close_reopen_and_retry(setup):
    _owner, api, qset, a, b = setup
    study = api.post("/api/studies", _body(qset, a, b), content_type="application/json").json()
    base = f"/api/studies/{study['id']}"
    started = api.post(f"{base}/start")
    assert started.status_code == 200 and started.json()["status"] == "generating"
    runs = GenerationRun.objects.filter(study_id=study["id"])
    assert sorted(r.model.name for r in runs) == sorted([a.name, b.name])
    again = api.post(f"{base}/start")
    assert again.status_code == 400 and "already been started" in again.json()["detail"]
    detail = api.get(base).json()
    assert [(r["status"], r["total"]) for r in detail["runs"]] == [("pending", 3)] * 2
    assert api.post(f"{base}/retry").json() == {"retried": 0}
    closed = api.post(f"{base}/close")
    assert closed.status_code == 409 and closed.json()["detail"]


def test_the_detail_reports_progress_as_the_study_page_counts_it(lab):
    api = lab.client(lab.owner)
    study = lab.study
    ann = lab.annotators[0]
    first = ann.assignments.filter(pair__study=study).order_by("order").first()
    vote_record(annotator=ann, assignment_id=first.pk, choice="left", seconds_on_page=3)
    detail = api.get(f"/api/studies/{study.pk}").json()
    progress = detail["progress"]
    assert progress["votes"] == 1 and progress["annotators"] == 2
    assert progress["judgments"] == 8 and progress["pairs_shown"] == 4
    assert {a["username"]: a["done"] for a in detail["annotators"]} == {"ann1": 1, "ann2": 0}
    assert all(r["status"] == "done" for r in detail["runs"])
    base = f"/api/studies/{study.pk}"
    assert api.post(f"{base}/close").json()["status"] == "closed"
    assert api.post(f"{base}/close").status_code == 409
    assert api.post(f"{base}/reopen").json()["status"] == "open"
    removed = api.delete(f"{base}/annotators/{ann.pk}")
    assert removed.status_code == 400 and "already voted" in removed.json()["detail"]
