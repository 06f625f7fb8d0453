"""Annotators voting through the API: the vote screen's pairs, blinding and one-vote rule."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import signing

from sbs.catalog.models import ModelEntry
from sbs.studies.models import Assignment, Study
from sbs.voting.models import Vote, VoteRevision
from tests.security.test_blinding import _leaks, _secrets

pytestmark = pytest.mark.django_db

# Every key an annotator's response may hold: positions, texts, progress; no model.
ANNOTATOR_KEYS = {
    "id", "username", "researcher", "status", "done", "total", "study", "held", "pair",
    "assignment", "position", "question", "left", "right", "shown", "choice", "outcome",
    "number", "choice_label", "changes", "comment", "can_change", "detail",
}  # fmt: skip


@pytest.fixture
def blinded(lab):
    """The researcher names the study and its set after the models, and the adapted model
    records its base and adapter, as people and training runs do (tests/security)."""
    a, b = lab.study.model_a, lab.study.model_b
    ModelEntry.objects.filter(pk=b.pk).update(
        parent=a, recipe={"adapter": "ru-lora-r16-adapter", "base": a.name, "vocab": "ru-32k"}
    )
    Study.objects.filter(pk=lab.study.pk).update(name=f"{a.name} vs {b.name}")
    qset = lab.study.question_set
    qset.name = f"questions for {b.name}"
    qset.save(update_fields=["name"])
    lab.study.refresh_from_db()
    return lab


class Recorder:
    """An annotator's API client that keeps every response it was given."""

    def __init__(self, client: Any) -> None:
        self.client, self.seen, self.bodies = client, {}, []

    def __call__(self, method: str, url: str, body: dict | None = None) -> Any:
        kwargs = {"content_type": "application/json"} if body is not None else {}
        args = (url, body) if body is not None else (url,)
        response = getattr(self.client, method)(*args, **kwargs)
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.seen[f"{method.upper()} {url} #{len(self.seen)}"] = (
            headers + "\n" + response.content.decode()
        )
        self.bodies.append(response.json())
        return response


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_an_annotator_votes_through_the_api_and_never_learns_a_model(blinded):
    study, annotator = blinded.study, blinded.annotators[0]
    call = Recorder(blinded.client(annotator))
    base = f"/api/annotate/studies/{study.pk}"
    assert call("get", "/api/me").json()["researcher"] is False
    assert call("get", "/api/annotate/studies").json() == [
        {"id": study.pk, "status": "open", "done": 0, "total": 4}
    ]
    shown_pairs = []
    for position in range(1, 6):
        screen = call("get", base).json()
        if screen["pair"] is None:
            break
        pair = screen["pair"]
        assert pair["position"] == position and pair["question"] and pair["left"]
        assert signing.loads(pair["shown"], salt="sbs.voting.shown")[0] == pair["assignment"]
        shown_pairs.append(pair)
        vote = {"assignment": pair["assignment"], "shown": pair["shown"], "choice": "left"}
        assert call("post", f"{base}/votes", vote).status_code == 201
    assert len(shown_pairs) == 4 and screen["done"] == 4 and screen["pair"] is None
    # Each pair as the vote screen builds it: the left answer is the left model's.
    for pair in shown_pairs:
        a = Assignment.objects.select_related("pair__question").get(pk=pair["assignment"])
        texts = dict(a.pair.question.answers.filter(run__study=study).values_list("run__model_id", "text"))  # fmt: skip
        assert pair["left"] == texts[a.left_model_id]
    history = call("get", f"{base}/votes").json()
    assert [v["number"] for v in history] == [1, 2, 3, 4]
    for v in history:
        detail = call("get", f"{base}/votes/{v['assignment']}").json()
        assert detail["choice"] == "left" and detail["can_change"]
    # Refusals are blind too: another study, a made-up pair, a stale stamp, a second vote.
    call("get", f"/api/annotate/studies/{study.pk + 1000}")
    call("post", f"{base}/votes", {"assignment": 0, "shown": "x", "choice": "left"})
    first = shown_pairs[0]
    call(
        "post", f"{base}/votes", {"assignment": first["assignment"], "shown": "x", "choice": "tie"}
    )
    call("post", f"{base}/votes", {**first, "choice": "right"})
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    assert call("get", base).json()["pair"] is None
    call("get", "/api/annotate/studies")

    secrets = _secrets(study) + [study.plan_salt, study.name, study.question_set.name]
    leaks = {where: found for where, text in call.seen.items() if (found := _leaks(text, secrets))}
    assert leaks == {}, f"responses that name or point at a model: {leaks}"
    keys = _keys(call.bodies)
    assert keys <= ANNOTATOR_KEYS, keys - ANNOTATOR_KEYS
    assert not any("model" in k for k in keys)


def test_the_checker_would_see_a_leak(blinded):
    """Not vacuous: the owner's own study answers do name the models."""
    owner = blinded.client(blinded.owner)
    text = owner.get(f"/api/studies/{blinded.study.pk}").content.decode()
    assert _leaks(text, _secrets(blinded.study))


def test_a_second_different_vote_is_refused_and_the_first_stands(lab):
    annotator = lab.annotators[0]
    api = lab.client(annotator)
    base = f"/api/annotate/studies/{lab.study.pk}"
    pair = api.get(base).json()["pair"]
    vote = {"assignment": pair["assignment"], "shown": pair["shown"], "choice": "left"}
    assert api.post(f"{base}/votes", vote, content_type="application/json").status_code == 201
    same = api.post(f"{base}/votes", vote, content_type="application/json")
    assert same.status_code == 200 and same.json()["outcome"] == "unchanged"
    other = api.post(f"{base}/votes", {**vote, "choice": "right"}, content_type="application/json")
    assert other.status_code == 409
    assert other.json()["assignment"] == pair["assignment"]
    assert "first vote stands" in other.json()["detail"]
    stored = Vote.objects.get(assignment_id=pair["assignment"])
    assert stored.choice == "left" and not VoteRevision.objects.exists()
    assert 0 <= stored.seconds_on_page < 60  # measured by the server from the stamp
    # The next pair has moved on; the change is an explicit PUT that keeps a revision.
    assert api.get(base).json()["pair"]["assignment"] != pair["assignment"]
    detail = api.get(f"{base}/votes/{pair['assignment']}").json()
    changed = api.put(
        f"{base}/votes/{pair['assignment']}",
        {"shown": detail["shown"], "choice": "tie", "comment": "передумал"},
        content_type="application/json",
    )
    assert changed.json() == {
        "assignment": pair["assignment"],
        "choice": "tie",
        "outcome": "changed",
    }
    assert VoteRevision.objects.get().choice == "left"
    assert Vote.objects.get(assignment_id=pair["assignment"]).comment == "передумал"


def test_votes_on_pairs_that_are_not_ones_own_are_refused(lab):
    mine, theirs = lab.annotators
    base = f"/api/annotate/studies/{lab.study.pk}"
    their_pair = Assignment.objects.filter(pair__study=lab.study, annotator=theirs).first()
    stamp = signing.dumps([their_pair.pk, 0], salt="sbs.voting.shown")
    api = lab.client(mine)
    vote = {"assignment": their_pair.pk, "shown": stamp, "choice": "left"}
    assert api.post(f"{base}/votes", vote, content_type="application/json").status_code == 404
    assert api.get(f"{base}/votes/{their_pair.pk}").status_code == 404
    outsider = lab.client(lab.outsider)
    assert outsider.get(base).status_code == 404
    assert outsider.post(f"{base}/votes", vote, content_type="application/json").status_code == 404
    assert not Vote.objects.exists()


def test_a_forged_stamp_or_a_closed_study_is_refused_with_the_pages_message(lab):
    api = lab.client(lab.annotators[0])
    base = f"/api/annotate/studies/{lab.study.pk}"
    pair = api.get(base).json()["pair"]
    forged = {"assignment": pair["assignment"], "shown": pair["shown"] + "x", "choice": "left"}
    refused = api.post(f"{base}/votes", forged, content_type="application/json")
    assert refused.status_code == 400 and "expired" in refused.json()["detail"]
    Study.objects.filter(pk=lab.study.pk).update(status=Study.Status.CLOSED)
    good = {"assignment": pair["assignment"], "shown": pair["shown"], "choice": "left"}
    closed = api.post(f"{base}/votes", good, content_type="application/json")
    assert closed.status_code == 400 and "closed" in closed.json()["detail"]
    assert not Vote.objects.exists()
