"""Render model or user text as Markdown that cannot run anything.

markdown-it with raw HTML off (so ``<script>`` shows as text) and its link validator
(``javascript:`` and ``data:`` links are dropped), then nh3 as a second, allow-list filter.
"""

from __future__ import annotations

import functools

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_md = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    .enable("table")
    .enable("strikethrough")
)

_TAGS = {
    "p", "br", "hr", "em", "strong", "s", "del", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}


def render_markdown(text: str) -> Markup:
    """Safe HTML of ``text``; rendered once per distinct text and process (an answer is shown
    to every annotator and on every reload, and never changes)."""
    return Markup(_rendered(text or ""))  # noqa: S704 - sanitised in _rendered


@functools.lru_cache(maxsize=4096)
def _rendered(text: str) -> str:
    """markdown-it (raw HTML off) then nh3 with an allow-list: the cached, sanitised HTML."""
    html = _md.render(text)
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
