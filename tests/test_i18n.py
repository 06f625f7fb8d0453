"""The interface speaks Russian by default and English on request."""

import pytest
from django.urls import reverse

from sbs.questions.models import QuestionSet
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def russian_default(settings):
    settings.LANGUAGE_CODE = "ru"


def test_login_page_is_russian_by_default_and_english_on_request(client, russian_default):
    assert "Войти" in client.get(reverse("login")).content.decode()
    english = client.get(reverse("login"), headers={"accept-language": "en"}).content.decode()
    assert "Log in" in english and "Войти" not in english


def test_language_switch_sticks_for_the_session(client, russian_default):
    client.post(reverse("set_language"), {"language": "en", "next": "/login/"})
    assert "Log in" in client.get(reverse("login")).content.decode()


def test_an_import_error_is_explained_in_russian(client, russian_default):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(factories.researcher())
    data = "question\nпервый вопрос\n".encode("cp1251")
    response = client.post(reverse("questions:sets"),
                           {"name": "x", "file": SimpleUploadedFile("x.csv", data)})  # fmt: skip
    html = response.content.decode()
    assert "строка 2" in html.lower() and "UTF-8" in html
    assert not QuestionSet.objects.exists()
