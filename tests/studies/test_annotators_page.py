"""The annotators page: creating forms redirect and spend a token (a reload or a double
click creates nothing twice), invite links live on the page until they stop working,
annotators are removed (refused once they voted), progress and last activity are shown, and
the account picker offers annotators only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from sbs.accounts.models import Invite
from sbs.accounts.roles import make_researcher
from sbs.studies.models import Assignment, Study
from sbs.voting.services import vote_record
from tests import factories
from tests.accounts.conftest import Lab, form_token, invite_by_page, make_study, shown_links

pytestmark = pytest.mark.django_db

User = get_user_model()


def _page(lab: Lab) -> str:
    url = reverse("studies:annotators", args=[lab.study.pk])
    return lab.client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()


def _open_study(owner, annotators, n: int = 4) -> Study:
    """An open study on model entries without files (answers written directly)."""
    study = make_study(owner, "open")
    models = (study.model_a, study.model_b)
    study.delete()
    return factories.open_study_with_answers(owner, models, annotators, n=n)


def test_a_reloaded_or_doubled_add_form_creates_each_annotator_once(lab):
    """Before: the POST answered with a page; a reload sent it again and made anna_2 and
    boris_2 with new links."""
    url = reverse("studies:annotators", args=[lab.study.pk])
    body = {"names": "anna\nboris", "form_token": form_token()}
    first = lab.client.post(url, body)
    assert first.status_code == 302 and first.url.startswith(url)
    again = lab.client.post(url, body, HTTP_ACCEPT_LANGUAGE="en")  # reload / double click
    assert again.status_code == 302
    assert sorted(User.objects.filter(username__in=["anna", "boris", "anna_2", "boris_2"])
                  .values_list("username", flat=True)) == ["anna", "boris"]  # fmt: skip
    assert Invite.objects.count() == 2
    html = lab.client.get(again.url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "nothing was created twice" in html
    # The links are on the page, not only in one response: reloads show the same ones.
    links = shown_links(_page(lab))
    assert set(links) == {"anna", "boris"} and shown_links(_page(lab)) == links
    # A new form (a new token) with the same names is a new request: new people.
    lab.client.post(url, {"names": "anna", "form_token": form_token()})
    assert User.objects.filter(username="anna_2").exists()


def test_a_doubled_study_form_creates_one_study(lab):
    qset = lab.study.question_set
    body = {
        "name": "twice", "question_set": qset.pk, "model_a": lab.study.model_a.pk,
        "model_b": lab.study.model_b.pk, "max_new_tokens": 16, "temperature": 0, "seed": 0,
        "batch_size": 4, "repeat_share": 0, "form_token": form_token(),
    }  # fmt: skip
    first = lab.client.post(reverse("studies:list"), body)
    second = lab.client.post(reverse("studies:list"), body)
    assert Study.objects.filter(name="twice").count() == 1
    study = Study.objects.get(name="twice")
    assert first.url == second.url == reverse("studies:detail", args=[study.pk])
    no_token = lab.client.post(reverse("studies:list"), {**body, "form_token": ""})
    assert no_token.status_code == 200 and Study.objects.filter(name="twice").count() == 1


def test_links_stay_on_their_page_while_the_study_page_refreshes(lab):
    """Before: links were shown in the POST's answer on the study page, which reloads itself
    every 3 s while answers are generated, and so vanished."""
    tokens = invite_by_page(lab, "ivan")
    Study.objects.filter(pk=lab.study.pk).update(status=Study.Status.GENERATING)
    detail = lab.client.get(reverse("studies:detail", args=[lab.study.pk])).content.decode()
    assert 'http-equiv="refresh"' in detail and tokens["ivan"] not in detail
    page = _page(lab)
    assert 'http-equiv="refresh"' not in page
    assert shown_links(page) == tokens
    # The study page only shows the annotators; it no longer answers a POST.
    post = lab.client.post(reverse("studies:detail", args=[lab.study.pk]), {"names": "x"})
    assert post.status_code == 405 and not User.objects.filter(username="x").exists()


def test_a_link_is_revoked_and_reissued_from_its_page(lab):
    token = invite_by_page(lab, "ivan")["ivan"]
    ivan = User.objects.get(username="ivan")
    response = lab.client.post(
        reverse("studies:revoke_invite", args=[lab.study.pk]), {"annotator": ivan.pk}
    )
    assert response.status_code == 302
    page = _page(lab)
    assert token not in page and "no valid link" in page and "no longer works" in page
    assert Client().post(reverse("invite"), {"token": token}).status_code == 404
    lab.client.post(reverse("studies:reinvite", args=[lab.study.pk]), {"annotator": ivan.pk})
    fresh = shown_links(_page(lab))["ivan"]
    assert fresh != token
    assert Client().post(reverse("invite"), {"token": fresh}).status_code == 200


def test_an_annotator_who_has_not_voted_is_removed_with_their_pairs_and_link(lab):
    pending = get_user_model().objects.create_user("pending")  # no password: invited
    pending.set_unusable_password()
    pending.save()
    active = factories.annotator("active")
    study = _open_study(lab.owner, [active, pending])
    lab.study = study
    Invite.objects.create(user=pending, token_sha256="0" * 64, created_by=lab.owner)
    assert Assignment.objects.filter(pair__study=study, annotator=pending).count() == 4
    url = reverse("studies:remove_annotator", args=[study.pk])
    # The page's button asks first (a GET), saying what goes; nothing is removed yet.
    assert f'action="{url}"' in _page(lab) and 'method="get"' in _page(lab)
    confirm = lab.client.get(url, {"annotator": pending.pk}, HTTP_ACCEPT_LANGUAGE="en")
    text = confirm.content.decode()
    assert "Remove pending from the study" in text
    assert "4 pairs they have not judged are dropped" in text
    assert "Their unused invite link stops working." in text
    assert study.annotators.filter(pk=pending.pk).exists()
    assert Assignment.objects.filter(pair__study=study, annotator=pending).count() == 4
    assert lab.client.post(url, {"annotator": pending.pk}).status_code == 302
    assert not study.annotators.filter(pk=pending.pk).exists()
    assert not Assignment.objects.filter(pair__study=study, annotator=pending).exists()
    assert not Invite.objects.filter(user=pending).exists()  # the link went with them
    assert "pending is no longer an annotator" in _page(lab)
    client = Client()
    client.force_login(active)
    assert client.get(reverse("voting:vote", args=[study.pk])).status_code == 200
    client.force_login(pending)
    assert client.get(reverse("voting:vote", args=[study.pk])).status_code == 404


def test_removing_an_annotator_who_voted_is_refused_and_their_votes_stay(lab):
    voter = factories.annotator("voter")
    study = _open_study(lab.owner, [voter])
    lab.study = study
    first = Assignment.objects.filter(annotator=voter).order_by("order").first()
    vote_record(annotator=voter, assignment_id=first.pk, choice="left", seconds_on_page=3)
    url = reverse("studies:remove_annotator", args=[study.pk])
    confirm = lab.client.get(url, {"annotator": voter.pk}, HTTP_ACCEPT_LANGUAGE="en")
    assert "voter has voted once in this study and stays in it" in confirm.content.decode()
    assert 'id="confirm-remove"' not in confirm.content.decode()
    response = lab.client.post(url, {"annotator": voter.pk})
    assert response.status_code == 302
    page = _page(lab)
    assert "voter has already voted in this study and stays in it" in page
    assert "has voted: stays in the study" in page  # no remove button for them
    assert study.annotators.filter(pk=voter.pk).exists()
    assert Assignment.objects.filter(annotator=voter).count() == 4
    assert first.__class__.objects.get(pk=first.pk).vote.choice == "left"


def test_the_study_page_shows_each_annotators_progress_and_last_vote(lab):
    busy, idle = factories.annotator("busy"), factories.annotator("idle")
    study = _open_study(lab.owner, [busy, idle])
    for assignment in Assignment.objects.filter(annotator=busy).order_by("order")[:3]:
        vote_record(annotator=busy, assignment_id=assignment.pk, choice="tie", seconds_on_page=1)
    html = lab.client.get(
        reverse("studies:detail", args=[study.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    table = html[html.index('id="annotator-progress"') :]
    busy_row = table[table.index(">busy<") : table.index(">idle<")]
    idle_row = table[table.index(">idle<") :].split("</tr>")[0]
    assert "3 / 4" in busy_row and "—" not in busy_row  # a date in the last-vote column
    assert "0 / 4" in idle_row and "—" in idle_row


def test_the_picker_offers_annotator_accounts_only(lab):
    """Before: a four-row multi-select of every account, researchers included."""
    ann = factories.annotator("annotator-anna")
    colleague = factories.researcher("colleague-res")
    staff = User.objects.create_user("staff-sam", is_staff=True)
    root = User.objects.create_superuser("root-rita", password="x-long-pass-1")
    gone = User.objects.create_user("gone-gleb", is_active=False)
    already = factories.annotator("already-in")
    lab.study.annotators.add(already)
    page = _page(lab)
    offered = page[page.index("data-picker-options") : page.index("data-picker-empty")]
    assert "annotator-anna" in offered
    for name in ("colleague-res", "staff-sam", "root-rita", "gone-gleb", "already-in", "owner"):
        assert name not in offered, name
    assert 'type="search"' in page and 'src="/static/js/picker.js"' in page
    url = reverse("studies:annotators", args=[lab.study.pk])
    for intruder in (colleague, staff, root, gone):
        response = lab.client.post(
            url, {"existing": [intruder.pk], "form_token": form_token()}, HTTP_ACCEPT_LANGUAGE="en"
        )
        assert response.status_code == 200
        assert "is not an annotator account that can be added" in response.content.decode()
        assert not lab.study.annotators.filter(pk=intruder.pk).exists()
    assert (
        lab.client.post(url, {"existing": [ann.pk], "form_token": form_token()}).status_code == 302
    )
    assert lab.study.annotators.filter(pk=ann.pk).exists()
    other = factories.annotator("promoted-pia")
    make_researcher(other)  # a researcher now: no longer offered
    assert "promoted-pia" not in _page(lab)
