"""Friendly pages, in Russian and English: an invite link that is used, expired, unknown or
of the old form (with DEBUG on too), and the site's 400/403/404/500 pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sbs.accounts.models import Invite
from tests import factories
from tests.accounts.conftest import invite_by_page

pytestmark = pytest.mark.django_db

TECHNICAL = ("Traceback", "URLconf", "Request Method", "technical", "Page not found at")


def _open(token: str, lang: str) -> tuple[int, str]:
    response = Client().post(reverse("invite"), {"token": token}, HTTP_ACCEPT_LANGUAGE=lang)
    return response.status_code, response.content.decode()


def _friendly(html: str) -> bool:
    return 'class="top"' in html and not any(word in html for word in TECHNICAL)


@pytest.mark.parametrize("debug", [True, False])
def test_used_expired_and_unknown_links_each_get_their_own_page(lab, settings, debug):
    settings.DEBUG = debug
    tokens = invite_by_page(lab, "used", "late", "fresh")
    password = "a-long-pass-9876"
    Client().post(reverse("invite"),
                  {"token": tokens["used"], "new_password1": password, "new_password2": password})  # fmt: skip
    Invite.objects.filter(user__username="late").update(
        created_at=timezone.now() - timedelta(days=15)
    )
    cases = {
        "used": (tokens["used"], 404, "This link has been used", "Ссылка уже использована"),
        "expired": (tokens["late"], 410, "This link has expired", "Срок действия ссылки истёк"),
        "unknown": ("no-such-token", 404, "This link does not work", "Ссылка не работает"),
    }
    for what, (token, status, english, russian) in cases.items():
        for lang, title in (("en", english), ("ru", russian)):
            code, html = _open(token, lang)
            assert code == status, (what, lang)
            assert f'<h1 id="invite-problem-title">{title}</h1>' in html, (what, lang)
            assert _friendly(html) and 'href="/login/"' in html, (what, lang)
    # Only an unknown link offers to paste it again; a used one says to log in.
    assert 'id="invite-form"' in _open("no-such-token", "en")[1]
    assert 'id="invite-form"' not in _open(tokens["used"], "en")[1]
    old = Client().get(f"/invite/{tokens['fresh']}/", HTTP_ACCEPT_LANGUAGE="ru")
    assert old.status_code == 404 and "Ссылка устарела" in old.content.decode()
    assert _friendly(old.content.decode())


@pytest.mark.parametrize("debug", [True, False])
def test_a_study_that_is_not_yours_is_a_friendly_404_in_both_languages(lab, settings, debug):
    settings.DEBUG = debug
    annotator = Client()
    annotator.force_login(factories.annotator("curious"))
    for client, url in (
        (lab.client, reverse("studies:detail", args=[lab.study.pk + 1000])),
        (annotator, reverse("studies:detail", args=[lab.study.pk])),  # not a researcher
        (annotator, reverse("voting:vote", args=[lab.study.pk])),  # not in the study
    ):
        english = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        russian = client.get(url, HTTP_ACCEPT_LANGUAGE="ru")
        assert english.status_code == russian.status_code == 404, url
        assert "Page not found" in english.content.decode() and _friendly(english.content.decode())
        assert "Страница не найдена" in russian.content.decode()


def test_an_unknown_address_is_the_same_404_page(client, settings):
    settings.DEBUG = False
    response = client.get("/no/such/page/", HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Страница не найдена" in html and _friendly(html)


def test_an_expired_form_is_a_friendly_403(settings):
    """A POST without its CSRF cookie (a page kept open for days, cookies off)."""
    settings.DEBUG = False
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "x"}, HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 403
    html = response.content.decode()
    assert "Страница устарела" in html and "Ничего не сохранено" in html
    english = client.post(reverse("login"), {"username": "x"}, HTTP_ACCEPT_LANGUAGE="en")
    assert "The page had expired" in english.content.decode()


def test_permission_denied_is_a_friendly_403(rf):
    from django.core.exceptions import PermissionDenied
    from django.utils import translation

    from sbs.accounts.roles import friendly_errors

    def forbidden(request):
        raise PermissionDenied

    request = rf.get("/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    with translation.override("ru"):
        response = friendly_errors(forbidden)(request)
    assert response.status_code == 403 and "Нет доступа" in response.content.decode()


@pytest.mark.urls("tests.accounts.boom_urls")
def test_a_server_error_is_a_friendly_500_without_details(settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    for lang, title in (("ru", "Что-то пошло не так"), ("en", "Something went wrong")):
        response = client.get("/boom/", HTTP_ACCEPT_LANGUAGE=lang)
        html = response.content.decode()
        assert response.status_code == 500 and title in html
        assert "a failure the visitor must not see" not in html and "RuntimeError" not in html
