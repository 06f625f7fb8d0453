from django import template
from django.utils.html import format_html
from django.utils.translation import gettext as _
from markupsafe import Markup

from sbs.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> Markup:
    """Safe Markdown: raw HTML is shown as text, unsafe links are removed."""
    return render_markdown(text)


@register.filter(name="answer")
def answer_filter(text: str) -> Markup:
    """A model's answer as safe Markdown, or a note that it is empty: a blank box would
    look like a page that failed to load, and an empty answer is a result to judge."""
    if not (text or "").strip():
        return Markup(
            format_html(
                '<p class="empty-answer">{}</p>',
                _("(empty answer: the model wrote nothing visible)"),
            )
        )
    return render_markdown(text)
