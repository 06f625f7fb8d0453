"""Invites: the token never in a URL, links that expire, re-issue by the study's owner,
and no way to turn an invite into someone else's password reset."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sbs.accounts import services
from sbs.accounts.models import Invite, token_digest
from sbs.accounts.roles import make_researcher
from sbs.studies import services as study_services
from tests import factories
from tests.accounts.conftest import Lab, form_token, invite_by_page, shown_links

pytestmark = pytest.mark.django_db

INVITE = reverse("invite")
NEW_PASSWORD = "a-long-pass-9876"


def _open(client: Client, token: str, lang: str = "en"):
    return client.post(INVITE, {"token": token}, HTTP_ACCEPT_LANGUAGE=lang)


def _accept(client: Client, token: str, password: str = NEW_PASSWORD):
    return client.post(
        INVITE,
        {"token": token, "new_password1": password, "new_password2": password},
        HTTP_ACCEPT_LANGUAGE="en",
    )


def _user(name: str):
    return get_user_model().objects.get(username=name)


def _age(name: str, days: float) -> None:
    Invite.objects.filter(user__username=name).update(
        created_at=timezone.now() - timedelta(days=days)
    )


def _reinvite(lab: Lab, user) -> str:
    """POST the annotators page's "new invite link" button; the new token, or "" if refused.
    The POST redirects to the annotators page, which shows the link."""
    response = lab.client.post(
        reverse("studies:reinvite", args=[lab.study.pk]),
        {"annotator": user.pk},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 302
    assert response.url.startswith(reverse("studies:annotators", args=[lab.study.pk]))
    page = lab.client.get(response.url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    if f"A new invite link for {user.username}" not in page:
        return ""
    return shown_links(page)[user.username]


def test_invite_links_carry_the_token_only_in_the_fragment(lab):
    """Before: /invite/<token>/ put the token in the request line, so in every access log."""
    response = lab.client.post(
        reverse("studies:annotators", args=[lab.study.pk]),
        {"names": "Ирина Петрова\nivan\n", "form_token": form_token()},
        follow=True,
    )
    html = response.content.decode()
    links = re.findall(r"http://testserver/invite/\S*?(?=<)", html)
    assert len(links) == 2
    for link in links:
        parts = urlsplit(link)
        assert (parts.path, parts.query) == ("/invite/", "")  # all a server ever sees
        assert Invite.objects.filter(token_sha256=token_digest(parts.fragment)).exists()
    assert "Each link works once, for 14 days." in html


def test_an_annotator_without_javascript_pastes_the_code_and_sets_a_password(lab):
    token = invite_by_page(lab, "ivan")["ivan"]
    anonymous = Client()
    page = anonymous.get(INVITE, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    html = page.content.decode()
    assert re.search(r'<input type="text" name="token"', html)  # a visible field to paste into
    assert 'src="/static/js/invite.js"' in html
    assert "no-store" in page["Cache-Control"]

    # Pasting the whole link works as well as the code alone.
    welcome = _open(anonymous, f"http://testserver/invite/#{token}")
    assert welcome.status_code == 200
    text = welcome.content.decode()
    assert "Welcome, ivan" in text and 'name="new_password1"' in text
    assert "no-store" in welcome["Cache-Control"]

    mismatch = anonymous.post(
        INVITE, {"token": token, "new_password1": NEW_PASSWORD, "new_password2": "other-9876"}
    )
    assert mismatch.status_code == 200 and not _user("ivan").has_usable_password()

    done = _accept(anonymous, token)
    assert done.status_code == 302 and done.url == reverse("home")
    assert anonymous.session["_auth_user_id"] == str(_user("ivan").pk)
    assert "Your user name is ivan" in anonymous.get(reverse("voting:my_studies")).content.decode()

    again = _accept(Client(), token, "another-pass-1234")
    assert again.status_code == 404
    assert "This invite link has already been used" in again.content.decode()
    assert Client().login(username="ivan", password=NEW_PASSWORD)


def test_an_expired_invite_is_refused_with_a_translated_message(lab, settings):
    """Before: an invite worked forever."""
    tokens = invite_by_page(lab, "ivan", "olga")
    _age("ivan", 14.01)
    _age("olga", 13.9)
    refused = _open(Client(), tokens["ivan"])
    assert refused.status_code == 410
    assert "This invite link has expired. Ask the researcher" in refused.content.decode()
    in_russian = _open(Client(), tokens["ivan"], lang="ru")
    assert in_russian.status_code == 410
    assert "истёк" in in_russian.content.decode()
    assert _accept(Client(), tokens["ivan"]).status_code == 410
    assert not _user("ivan").has_usable_password()
    assert _accept(Client(), tokens["olga"]).status_code == 302  # not yet expired

    settings.INVITE_MAX_AGE = 1
    fresh = invite_by_page(lab, "petr")["petr"]
    _age("petr", 1.01)
    assert _open(Client(), fresh).status_code == 410


def test_the_owner_reissues_a_link_and_the_old_one_stops_working(lab):
    tokens = invite_by_page(lab, "ivan")
    ivan = _user("ivan")
    _age("ivan", 20)
    page = lab.client.get(
        reverse("studies:annotators", args=[lab.study.pk]), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "link expired on" in page.content.decode()
    assert tokens["ivan"] not in page.content.decode()  # an expired link is not offered

    new = _reinvite(lab, ivan)
    assert new and new != tokens["ivan"]
    assert _open(Client(), tokens["ivan"]).status_code == 404  # the old link is dead
    listing = lab.client.get(reverse("studies:annotators", args=[lab.study.pk])).content.decode()
    assert "link valid until" in listing
    newer = _reinvite(lab, ivan)  # re-issued again before use: only the newest works
    assert _open(Client(), new).status_code == 404
    assert _accept(Client(), newer).status_code == 302
    # Once the password is set there is no button, and the action is refused.
    listing = lab.client.get(reverse("studies:annotators", args=[lab.study.pk])).content.decode()
    assert "has set a password" in listing and "New invite link" not in listing
    assert newer not in listing  # a used link is no longer shown
    assert _reinvite(lab, ivan) == ""


def test_a_reissue_is_never_a_password_reset(lab):
    """A researcher may add any account to a study; a reset would let them take it over."""
    with_password = factories.annotator("anna", "anna-pass-123")
    root = get_user_model().objects.create_superuser("root", password=None)  # no password yet
    colleague = get_user_model().objects.create_user("colleague")
    make_researcher(colleague)
    staff = get_user_model().objects.create_user("staff", is_staff=True)
    victims = [with_password, root, colleague, staff]
    # The page's picker offers annotators only; a service (an import, the demo) may add
    # anyone, so the re-issue must refuse by itself.
    study_services.study_add_annotators(study=lab.study, users=victims)
    assert set(lab.study.annotators.all()) == set(victims)
    for victim in victims:
        response = lab.client.post(
            reverse("studies:reinvite", args=[lab.study.pk]),
            {"annotator": victim.pk},
            HTTP_ACCEPT_LANGUAGE="en",
        )
        assert response.status_code == 302, victim
        shown = lab.client.get(response.url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert victim.username in shown
        assert "invites are only for annotators" in shown or "has already set a password" in shown
    assert not Invite.objects.exists()
    assert Client().login(username="anna", password="anna-pass-123")


def test_a_researcher_cannot_claim_another_researchers_annotator(lab, other_lab):
    token = invite_by_page(lab, "ivan")["ivan"]
    ivan = _user("ivan")
    # The rival adds ivan to their own study, then asks for a new link: refused.
    other_lab.client.post(
        reverse("studies:annotators", args=[other_lab.study.pk]),
        {"existing": [ivan.pk], "form_token": form_token()},
    )
    assert other_lab.study.annotators.filter(pk=ivan.pk).exists()
    assert _reinvite(other_lab, ivan) == ""
    # On the owner's study the rival's request is a 404.
    response = other_lab.client.post(
        reverse("studies:reinvite", args=[lab.study.pk]), {"annotator": ivan.pk}
    )
    assert response.status_code == 404
    # The owner's link still works.
    assert _accept(Client(), token).status_code == 302


def test_reinvite_needs_an_annotator_of_this_study(lab, other_lab):
    invite_by_page(other_lab, "stranger")
    url = reverse("studies:reinvite", args=[lab.study.pk])
    for body in ({}, {"annotator": "x"}, {"annotator": "²"}, {"annotator": _user("stranger").pk}):
        response = lab.client.post(url, body)
        assert response.status_code == 302 and response.url == reverse(
            "studies:annotators", args=[lab.study.pk]
        )
    assert Invite.objects.count() == 1  # the rival's own, untouched


def test_the_old_link_form_is_a_404_with_a_message_and_its_token_is_withdrawn(lab):
    """Before: /invite/<token>/ opened the password form, with the token logged on the way."""
    token = invite_by_page(lab, "ivan")["ivan"]
    old = Client().get(f"/invite/{token}/", HTTP_ACCEPT_LANGUAGE="en")
    assert old.status_code == 404
    assert "Invite links of this form no longer work" in old.content.decode()
    assert 'name="new_password1"' not in old.content.decode()
    # The token has been in a request line: it opens nothing any more.
    assert _open(Client(), token).status_code == 404
    assert not _user("ivan").has_usable_password()
    in_russian = Client().get(f"/invite/{token}/", HTTP_ACCEPT_LANGUAGE="ru")
    assert in_russian.status_code == 404 and "Попросите" in in_russian.content.decode()


def test_redeem_spends_an_invite_once_and_keeps_it_for_a_refused_password(lab):
    token = invite_by_page(lab, "ivan")["ivan"]
    with pytest.raises(ValidationError):
        services.invite_redeem(token=token, password="123")  # too short, too common
    user = services.invite_redeem(token=token, password=NEW_PASSWORD)  # still usable
    assert user.check_password(NEW_PASSWORD)
    with pytest.raises(services.InviteError) as second:
        services.invite_redeem(token=token, password="another-pass-1234")
    assert second.value.code == "used"
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_an_unused_invite_cannot_reset_a_password_set_since(lab):
    token = invite_by_page(lab, "ivan")["ivan"]
    ivan = _user("ivan")
    ivan.set_password("set-by-an-admin-1")  # e.g. by an administrator meanwhile
    ivan.save(update_fields=["password"])
    assert _open(Client(), token).status_code == 404
    assert _accept(Client(), token).status_code == 404
    assert Client().login(username="ivan", password="set-by-an-admin-1")


def test_a_made_up_or_empty_token_opens_nothing(lab):
    invite_by_page(lab, "ivan")
    assert _open(Client(), "made-up-token").status_code == 404
    assert _accept(Client(), "made-up-token").status_code == 404
    assert Client().post(INVITE, {"token": ""}).status_code == 400
    assert not _user("ivan").has_usable_password()
