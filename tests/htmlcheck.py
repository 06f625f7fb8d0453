"""An independent check that HTML cannot run script: parse it and look at every element."""

from __future__ import annotations

from html.parser import HTMLParser


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes)
            if "src" not in attributes:
                self.problems.append("inline <script>")
        if tag in {"iframe", "object", "embed"}:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>")
            if name in {"href", "src", "action", "formaction"} and value:
                scheme = value.strip().lower().split(":", 1)[0] if ":" in value else ""
                if scheme in {"javascript", "vbscript"} or (scheme == "data" and tag != "img"):
                    self.problems.append(f"<{tag} {name}={value[:40]}>")
            if name == "style":
                self.problems.append(f"<{tag} style=...> (blocked by the CSP)")


def script_problems(html: str, allowed_script_srcs: tuple[str, ...] = ("/static/",)) -> list[str]:
    """Every way the page could execute code other than our own static scripts."""
    collector = _Collector()
    collector.feed(html)
    problems = list(collector.problems)
    for attributes in collector.scripts:
        src = attributes.get("src") or ""
        if src and not src.startswith(allowed_script_srcs):
            problems.append(f"<script src={src}>")
    return problems
