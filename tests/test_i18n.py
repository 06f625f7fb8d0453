"""The interface speaks Russian by default and English on request."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

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


# --------------------------------------------------------------------------- completeness

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "locale" / "ru" / "LC_MESSAGES" / "django.po"


@pytest.mark.skipif(not shutil.which("xgettext"), reason="GNU gettext (xgettext) is not installed")
def test_every_message_in_the_code_and_templates_has_a_russian_translation(tmp_path):
    """Extract the messages afresh (``make messages`` on a copy of the tree) and require a
    Russian text for each: a new ``gettext`` or ``{% translate %}`` without an entry in
    locale/ru fails here, and so does one msgmerge only guessed (fuzzy)."""
    for name in ("sbs", "adaptation", "workers", "templates", "locale"):
        shutil.copytree(ROOT / name, tmp_path / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
    shutil.copy(ROOT / "manage.py", tmp_path / "manage.py")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "ru", "--no-obsolete",
         "-i", "var/*"],
        cwd=tmp_path, env={**env, "SBS_VAR_DIR": str(tmp_path / "var")}, check=True,
        capture_output=True,
    )  # fmt: skip
    fresh = tmp_path / "locale" / "ru" / "LC_MESSAGES" / "django.po"
    missing = []
    for only in ("--untranslated", "--only-fuzzy"):
        listed = subprocess.run(["msgattrib", only, "--no-obsolete", "--no-wrap", str(fresh)],
                                check=True, capture_output=True, text=True).stdout  # fmt: skip
        missing += [
            f"{where.strip()}: {msgid}"
            for where, msgid in re.findall(r'^#: (.*)\n(?:#.*\n)*msgid "(.+)"$', listed, re.M)
        ]
    assert missing == [], (
        f"{len(missing)} messages without a Russian translation in {CATALOGUE.relative_to(ROOT)} "
        "(run `make messages`, translate, compile):\n  " + "\n  ".join(missing)
    )


@pytest.mark.skipif(not shutil.which("msgfmt"), reason="GNU gettext (msgfmt) is not installed")
def test_the_compiled_catalogue_matches_the_translations(tmp_path):
    """django.mo is what Django reads: a translation added to the .po but not compiled is
    not shown."""
    import gettext

    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(compiled), str(CATALOGUE)], check=True)
    with compiled.open("rb") as fresh, CATALOGUE.with_suffix(".mo").open("rb") as shipped:
        want = gettext.GNUTranslations(fresh)._catalog  # type: ignore[attr-defined]
        have = gettext.GNUTranslations(shipped)._catalog  # type: ignore[attr-defined]
    stale = sorted(str(k)[:90] for k in set(want) | set(have) if want.get(k) != have.get(k))
    assert stale == [], "compile the catalogue (make messages):\n  " + "\n  ".join(stale)


_WORD = re.compile(r"[A-Za-zА-Яа-яЁё][\w-]+")
# Names and symbols that read the same in both languages.
_NOT_WORDS = {"sbs", "sha256", "id", "acc", "acc_norm", "Elo", "Wilson", "top-p"}
_TEXT_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "label"}


def _unmarked(source: str) -> list[str]:
    """Visible text and text attributes of a template outside {% translate %} and
    {% blocktranslate %}: variables and tags count as no text."""
    from html.parser import HTMLParser

    from django.template.base import Lexer, TokenType

    pieces, skip_until = [], None
    for token in Lexer(source).tokenize():
        name = (token.contents.split() or [""])[0]
        if skip_until:
            skip_until = (
                None if token.token_type == TokenType.BLOCK and name == skip_until else skip_until
            )
            continue
        if token.token_type == TokenType.BLOCK and name in (
            "blocktranslate",
            "blocktrans",
            "comment",
        ):
            skip_until = {"comment": "endcomment"}.get(name, f"end{name}")
        if token.token_type == TokenType.TEXT:
            pieces.append(token.contents)
        elif token.token_type != TokenType.COMMENT:
            pieces.append(" ")

    found: list[str] = []

    def words(text: str) -> bool:
        return any(w not in _NOT_WORDS for w in _WORD.findall(text) if w)

    class Parser(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.open: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.open.append(tag)
            found.extend(f"{tag}[{k}]={v!r}" for k, v in attrs
                         if k in _TEXT_ATTRIBUTES and v and words(v))  # fmt: skip

        def handle_endtag(self, tag: str) -> None:
            if tag in self.open:
                del self.open[len(self.open) - 1 - self.open[::-1].index(tag) :]

        def handle_data(self, data: str) -> None:
            if not (self.open and self.open[-1] in ("script", "style")) and words(data):
                found.append(data.strip())

    Parser().feed("".join(pieces))
    return found


def test_templates_have_no_text_outside_translation_tags():
    problems = {
        str(path.relative_to(ROOT)): found
        for path in sorted((ROOT / "templates").rglob("*.html"))
        if (found := _unmarked(path.read_text()))
    }
    assert problems == {}, "text not marked for translation: " + repr(problems)


def test_the_template_check_sees_unmarked_text():
    assert _unmarked('<p>{% translate "Fine" %} <b>{{ n }}</b></p>') == []
    assert _unmarked("<p>{% blocktranslate %}Fine {{ n }}{% endblocktranslate %}</p>") == []
    assert _unmarked("<th>Status</th>") == ["Status"]
    assert _unmarked('<input placeholder="Search">') == ["input[placeholder]='Search'"]
    assert _unmarked("<td>{{ a.id }} · id</td><script>var x;</script>") == []


def _form_classes() -> list[type]:
    import importlib
    import inspect

    from django import forms

    classes: dict[str, type] = {}
    for path in sorted((ROOT / "sbs").rglob("*.py")):
        if "migrations" in path.parts or "management" in path.parts:
            continue
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, forms.BaseForm)
                    and obj.__module__.startswith("sbs")):  # fmt: skip
                classes[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(classes.values())


# Choices read from data (names and licences of shipped sets), not written in the code.
_DATA_CHOICES = {"sbs.questions.forms.ShippedBenchmarkForm.shipped"}


def test_every_form_field_label_help_and_choice_is_marked_for_translation():
    from django.utils.functional import Promise

    problems = []
    for form_class in _form_classes():
        try:
            fields = form_class().fields  # labels some forms set in __init__
        except TypeError:
            fields = form_class.base_fields
        for name, field in fields.items():
            where = f"{form_class.__module__}.{form_class.__name__}.{name}"
            if field.widget.is_hidden:
                continue
            if not isinstance(field.label, Promise):
                problems.append(f"{where}: label {field.label!r}")
            if field.help_text and not isinstance(field.help_text, Promise):
                problems.append(f"{where}: help text {field.help_text!r}")
            if where in _DATA_CHOICES:
                continue
            for _value, label in getattr(field, "_choices", None) or []:
                if (
                    isinstance(label, str)
                    and not isinstance(label, Promise)
                    and _WORD.search(label)
                ):
                    problems.append(f"{where}: choice {label!r}")
    assert len(_form_classes()) >= 5
    assert problems == []


# Refusals shown to people: their first argument must be a translated string.
_USER_FACING_ERRORS = {"ServiceError", "VoteError", "AlreadyJudged", "InviteError",
                       "ValidationError", "GenerationSettingsError"}  # fmt: skip
# Raised only for a broken job row, never on a form; the catalogue's owners know.
_KNOWN_UNTRANSLATED = {
    "sbs/catalog/services.py: 'the import job has no reserved model entry'",
    "sbs/catalog/services.py: 'the adaptation job has no reserved model entry'",
}


def test_messages_and_refusals_in_python_are_marked_for_translation():
    import ast

    problems = []
    for path in sorted((ROOT / "sbs").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = getattr(func, "attr", None) or getattr(func, "id", "")
            owner = getattr(getattr(func, "value", None), "id", "")
            index = 1 if owner == "messages" else 0
            if not (name in _USER_FACING_ERRORS or (owner == "messages" and name in
                    ("success", "error", "info", "warning"))) or len(node.args) <= index:  # fmt: skip
                continue
            arg = node.args[index]
            arg = arg.left if isinstance(arg, ast.BinOp) else arg
            if isinstance(arg, ast.Constant | ast.JoinedStr):
                text = f"{path.relative_to(ROOT)}: {ast.unparse(arg)}"
                if text not in _KNOWN_UNTRANSLATED:
                    problems.append(f"{text} (line {node.lineno})")
    assert problems == []


# --------------------------------------------------------------------------- numbers


def test_numbers_on_the_study_page_follow_the_language(client, russian_default):
    owner = factories.researcher()
    client.force_login(owner)
    study = _study_without_files(owner, temperature=0.7, repeat_share=0.25)
    russian = client.get(reverse("studies:detail", args=[study.pk])).content.decode()
    settings_line = russian[russian.index('id="generation-settings"') :].split("</p>")[0]
    assert "<b>0,7</b>" in settings_line and "0,25" in settings_line
    assert "temperature=" not in russian and "use_chat_template" not in russian
    assert "температура" in settings_line and "шаблон чата <b>да</b>" in settings_line
    english = client.get(reverse("studies:detail", args=[study.pk]),
                         headers={"accept-language": "en"}).content.decode()  # fmt: skip
    assert "<b>0.7</b>" in english and "chat template <b>yes</b>" in english


def _study_without_files(owner, *, temperature: float, repeat_share: float):
    from sbs.catalog.models import ModelEntry
    from sbs.studies import services

    a, b = (ModelEntry.objects.create(name=n, kind="hf_folder", path=n, sha256="0")
            for n in ("num-a", "num-b"))  # fmt: skip
    return services.study_create(
        owner=owner, name="numbers", question_set=factories.question_set(2), model_a=a,
        model_b=b, generation={"temperature": temperature}, repeat_share=repeat_share,
    )  # fmt: skip


def test_numbers_on_the_results_page_follow_the_language(client, russian_default):
    from sbs.analysis.models import ReportCache
    from tests.analysis.test_report_fixtures import make_voted_study
    from workers.tasks import compute_report

    voted = make_voted_study()
    client.force_login(voted.owner)
    url = reverse("studies:results", args=[voted.study.pk])
    client.get(url)  # asks for the report
    row = ReportCache.objects.filter(study=voted.study).latest("pk")
    assert compute_report.apply(args=[row.pk]).get() == "done"
    html = client.get(url).content.decode()
    win_rate = re.search(r'id="win-rate"[^>]*>([^<]+)<', html).group(1)
    assert "," in win_rate and "." not in win_rate, win_rate
