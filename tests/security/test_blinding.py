"""Blinding: nothing an annotator can load names, points at or fingerprints a model."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from sbs.catalog.models import ModelEntry
from sbs.studies.models import Study
from tests.security.urlwalk import endpoints

pytestmark = pytest.mark.django_db


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _secrets(study: Study) -> list[str]:
    """Everything that would tell the two models apart: names, store paths, hashes, the
    adapter and base named in the recipe."""
    found: set[str] = set()
    for entry in (study.model_a, study.model_b):
        entry = ModelEntry.objects.select_related("parent").get(pk=entry.pk)
        found |= {entry.name, entry.path, PurePosixPath(entry.path).name, entry.sha256[:8]}
        found |= {s for s in _strings(entry.recipe) if len(s) >= 4}
        if entry.parent:
            found.add(entry.parent.name)
    return sorted(found)


@pytest.fixture
def blinded(live: Any) -> Any:
    a, b = live.study.model_a, live.study.model_b
    # The adapted model records its adapter and base, as a real training run would; the
    # researcher names the study and its set after the models, as people do.
    ModelEntry.objects.filter(pk=b.pk).update(
        parent=a, recipe={"adapter": "ru-lora-r16-adapter", "base": a.name, "vocab": "ru-32k"}
    )
    Study.objects.filter(pk=live.study.pk).update(name=f"{a.name} vs {b.name}")
    qset = live.study.question_set
    qset.name = f"questions for {b.name}"
    qset.save(update_fields=["name"])
    live.study.refresh_from_db()
    return live


def _leaks(text: str, secrets: list[str]) -> list[str]:
    lowered = text.lower()
    leaks = [s for s in secrets if s.lower() in lowered]
    if re.search(r"\b(model_a|model_b|left_model)\b", text):
        leaks.append("a model field name")
    return leaks


def _page(response: Any) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return headers + "\n" + body.decode()


def test_every_annotator_page_script_and_error_page_is_blind(blinded):
    study, annotator = blinded.study, blinded.annotators[0]
    secrets = _secrets(study)
    assert any("adapter" in s for s in secrets) and study.model_b.name in secrets
    client = Client()
    seen: dict[str, str] = {"login page": _page(client.get(reverse("login")))}
    client.force_login(annotator)
    vote_url = reverse("voting:vote", args=[study.pk])
    for endpoint in endpoints():  # every page of the annotator's part of the site
        if endpoint.audience == "annotator" and not endpoint.params:
            seen[str(endpoint)] = _page(client.get(reverse(endpoint.name)))

    # The vote screen for every pair, voting through to the done page.
    for i in range(100):
        response = client.get(vote_url)
        html = _page(response)
        match = re.search(r'name="assignment" value="(\d+)"', html)
        if match is None:
            seen["done page"] = html
            break
        seen[f"vote screen {i + 1}"] = html
        shown = re.search(r'name="shown" value="([^"]+)"', html).group(1)
        after = client.post(
            vote_url, {"assignment": match.group(1), "shown": shown, "choice": "left"}, follow=True
        )
        assert after.status_code == 200
    assert "4 / 4" in seen["done page"] and 'name="choice"' not in seen["done page"]
    # The annotator's own votes, and each voted pair as it was shown (to change it).
    history = _page(client.get(reverse("voting:votes", args=[study.pk])))
    seen["my votes"] = history
    changes = re.findall(r'href="(/annotate/\d+/votes/\d+/)"', history)
    assert len(changes) == 4
    for url in changes:
        seen[f"change page {url}"] = _page(client.get(url))
    seen["refused vote (message page)"] = _page(
        client.post(vote_url, {"assignment": "0", "shown": "x", "choice": "left"}, follow=True)
    )
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    seen["closed study"] = _page(client.get(vote_url))
    seen["my studies, closed"] = _page(client.get(reverse("voting:my_studies")))

    # Error pages: a study the annotator is not in, a made-up id, a POST without CSRF token.
    seen["404 page"] = _page(client.get(reverse("voting:vote", args=[study.pk + 1000])))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(annotator)
    forbidden = strict.post(vote_url, {"choice": "left"})
    assert forbidden.status_code == 403
    seen["403 page"] = _page(forbidden)
    outsider = Client()
    outsider.force_login(blinded.outsider)
    seen["404 page of an outsider"] = _page(outsider.get(vote_url))

    # Static files: every file the site serves from its own static folders.
    for folder in settings.STATICFILES_DIRS:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                seen[f"static {path.relative_to(folder)}"] = path.read_text(errors="replace")
    assert finders.find("js/vote.js") and "static js/vote.js" in seen

    leaks = {where: found for where, text in seen.items() if (found := _leaks(text, secrets))}
    assert leaks == {}, f"pages that name or point at a model: {leaks}"
    assert len([k for k in seen if k.startswith("vote screen")]) == 4


def test_the_checker_would_see_a_leak(blinded):
    """The test above is not vacuous: the researcher's own pages do name the models."""
    client = Client()
    client.force_login(blinded.owner)
    html = _page(client.get(reverse("studies:answers", args=[blinded.study.pk])))
    assert blinded.study.model_a.name in _leaks(html, _secrets(blinded.study))
