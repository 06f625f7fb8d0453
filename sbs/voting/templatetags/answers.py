from django import template
from markupsafe import Markup

from sbs.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> Markup:
    """Safe Markdown: raw HTML is shown as text, unsafe links are removed."""
    return render_markdown(text)
