import pytest

from sbs.markdown import render_markdown
from sbs.studies.selfid import names_itself
from tests.htmlcheck import script_problems

HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[клик](javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "</script><script>alert(2)</script>",
    '<a href="javascript:alert(1)">a</a>',
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_renders_inert(text):
    html = str(render_markdown(text))
    assert script_problems(html) == []
    assert "<script" not in html and "<img" not in html and '<a href="javascript' not in html


def test_markdown_renders_lists_code_and_cyrillic():
    html = str(render_markdown("Шаги:\n\n1. первый\n2. второй\n\n```python\nprint('привет')\n```"))
    assert "<ol>" in html and "<li>первый</li>" in html
    assert "<pre><code>print(&#x27;привет&#x27;)" in html or "<pre><code>print('привет')" in html


@pytest.mark.parametrize(
    "text",
    [
        "I am Gemma, a model by Google.",
        "Я - SmolLM, языковая модель.",
        "Меня зовут Лама.",
        "Я был создан компанией Google.",
        "I'm ChatGPT",
    ],  # fmt: skip
)
def test_answers_naming_a_model_are_flagged(text):
    assert names_itself(text)


@pytest.mark.parametrize(
    "text", ["Фотосинтез — это процесс.", "I am happy to help.", "Я думаю, что да."]
)
def test_ordinary_answers_are_not_flagged(text):
    assert not names_itself(text)


def test_registered_model_names_are_flagged_too():
    assert names_itself("This answer comes from my-adapted-model", ("my-adapted-model",))


@pytest.mark.timeout(20)  # a guard against catastrophic backtracking, not a speed measure
@pytest.mark.parametrize(
    "text",
    [
        "я" + " " * 100_000 + "x",
        "я" + "\n " * 50_000,
        "I am" + "\t" * 100_000,
        "создан" + "-" * 100_000,
    ],
)
def test_self_identification_check_is_linear_on_long_whitespace(text):
    # The old pattern backtracked over every split of the run: 'я' and 2,000 spaces took
    # 22 s, so 100,000 would take hours.
    assert names_itself(text) is False


def test_whitespace_does_not_hide_a_model_name():
    assert names_itself("Я" + " " * 300 + "—   SmolLM, ваш помощник")
    assert names_itself("I am \t\t   Gemma")


def test_an_empty_answer_says_so_instead_of_a_blank_box():
    from django.utils import translation

    from sbs.voting.templatetags.answers import answer_filter

    with translation.override("en"):
        for blank in ("", "   ", "\n\n\n\n"):
            assert "nothing visible" in str(answer_filter(blank))
        assert "empty-answer" not in str(answer_filter("Ответ: **да**"))
        assert "<strong>да</strong>" in str(answer_filter("Ответ: **да**"))
    with translation.override("ru"):
        assert "пустой ответ" in str(answer_filter("\n"))


def test_an_answer_is_rendered_once_per_process_and_stays_inert():
    from sbs import markdown

    text = "Ответ **жирный** <script>alert(1)</script> [x](javascript:alert(1)) " + "ё" * 3000
    before = markdown._rendered.cache_info()
    first, second = render_markdown(text), render_markdown(text)
    after = markdown._rendered.cache_info()
    assert str(first) == str(second) and "<script>" not in str(first)
    assert 'href="javascript' not in str(first) and "<strong>жирный</strong>" in str(first)
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
