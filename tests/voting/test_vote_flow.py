"""The annotator's side over HTTP: voting, resuming, refusals, blinding."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from sbs.studies.models import Answer, Assignment, Study
from sbs.voting.models import Vote, VoteRevision
from tests import factories
from tests.htmlcheck import script_problems

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(two_models):
    owner = factories.researcher()
    ann = [factories.annotator("ann1"), factories.annotator("ann2")]
    study = factories.open_study_with_answers(owner, two_models, ann, n=6)
    return study, ann


def _vote_form(client, study):
    page = client.get(reverse("voting:vote", args=[study.pk]))
    html = page.content.decode()
    assignment = re.search(r'name="assignment" value="(\d+)"', html).group(1)
    shown = re.search(r'name="shown" value="([^"]+)"', html).group(1)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    return html, {"assignment": assignment, "shown": shown, "csrfmiddlewaretoken": csrf}


def test_annotator_votes_through_the_study_and_progress_advances(client, setup):
    study, (ann1, _) = setup
    client.force_login(ann1)
    my = client.get(reverse("voting:my_studies")).content.decode()
    assert "0 / 6" in my
    for i in range(6):
        html, form = _vote_form(client, study)
        assert f"{i + 1} / 6" in html
        response = client.post(
            reverse("voting:vote", args=[study.pk]),
            {**form, "choice": ["left", "right", "tie", "both_bad"][i % 4]},
        )
        assert response.status_code == 302
    assert Vote.objects.filter(assignment__annotator=ann1).count() == 6
    done = client.get(reverse("voting:vote", args=[study.pk])).content.decode()
    assert "6 / 6" in done and 'name="choice"' not in done


def test_vote_stores_time_measured_by_the_server(client, setup, monkeypatch):
    import time as time_module

    study, (ann1, _) = setup
    client.force_login(ann1)
    _, form = _vote_form(client, study)
    real = time_module.time
    monkeypatch.setattr("sbs.voting.shown.time.time", lambda: real() + 42.0)
    client.post(reverse("voting:vote", args=[study.pk]), {**form, "choice": "left"})
    vote = Vote.objects.get(assignment_id=form["assignment"])
    assert 41.0 <= vote.seconds_on_page <= 60.0


def test_double_submit_stores_one_vote(client, setup):
    study, (ann1, _) = setup
    client.force_login(ann1)
    _, form = _vote_form(client, study)
    for _ in range(3):
        client.post(reverse("voting:vote", args=[study.pk]), {**form, "choice": "left"})
    assert Vote.objects.filter(assignment_id=form["assignment"]).count() == 1
    assert Vote.objects.filter(assignment__annotator=ann1).count() == 1
    assert not VoteRevision.objects.exists()


def test_a_vote_from_a_stale_tab_is_refused_and_offers_the_change(client, setup):
    """Two tabs on one pair: the second vote does not silently replace the first; the
    annotator lands on the change page with a message."""
    study, (ann1, _) = setup
    client.force_login(ann1)
    _, form = _vote_form(client, study)
    url = reverse("voting:vote", args=[study.pk])
    client.post(url, {**form, "choice": "left"})
    stale = client.post(url, {**form, "choice": "tie"}, follow=True)
    change_url = reverse("voting:vote_change", args=[study.pk, form["assignment"]])
    assert stale.redirect_chain[-1][0] == change_url
    assert "already judged this pair" in stale.content.decode()
    vote = Vote.objects.get(assignment_id=form["assignment"])
    assert vote.choice == "left" and not vote.revisions.exists()
    # the same vote again (a double click) is not an error and changes nothing
    again = client.post(url, {**form, "choice": "left"})
    assert again.status_code == 302 and again.url == url


def test_changing_a_vote_keeps_its_history(client, setup):
    study, (ann1, _) = setup
    client.force_login(ann1)
    _, form = _vote_form(client, study)
    client.post(reverse("voting:vote", args=[study.pk]), {**form, "choice": "left"})
    history = client.get(reverse("voting:votes", args=[study.pk])).content.decode()
    assert "left is better" in history
    change_url = reverse("voting:vote_change", args=[study.pk, form["assignment"]])
    page = client.get(change_url).content.decode()
    assert 'value="left" data-key="1" class="current"' in page
    shown = re.search(r'name="shown" value="([^"]+)"', page).group(1)
    done = client.post(
        change_url, {"assignment": form["assignment"], "shown": shown, "choice": "tie"}
    )
    assert done.status_code == 302 and done.url == reverse("voting:votes", args=[study.pk])
    vote = Vote.objects.get(assignment_id=form["assignment"])
    assert vote.choice == "tie"
    assert list(vote.revisions.values_list("choice", flat=True)) == ["left"]
    history = client.get(reverse("voting:votes", args=[study.pk])).content.decode()
    assert "tie" in history and study.model_a.name not in history


def test_no_one_opens_another_annotators_vote(client, setup):
    study, (ann1, ann2) = setup
    client.force_login(ann1)
    _, form = _vote_form(client, study)
    client.post(reverse("voting:vote", args=[study.pk]), {**form, "choice": "left"})
    client.force_login(ann2)
    url = reverse("voting:vote_change", args=[study.pk, form["assignment"]])
    assert client.get(url).status_code == 404
    assert client.post(url, {"assignment": form["assignment"], "choice": "tie"}).status_code == 404
    assert Vote.objects.get(assignment_id=form["assignment"]).choice == "left"


def test_vote_on_someone_elses_assignment_is_refused(client, setup):
    study, (ann1, ann2) = setup
    client.force_login(ann1)
    _, form = _vote_form(client, study)
    other = Assignment.objects.filter(annotator=ann2).first()
    from django.core import signing

    forged = signing.dumps([other.pk, 0], salt="sbs.voting.shown")
    client.post(reverse("voting:vote", args=[study.pk]), {**form, "assignment": other.pk, "shown": forged, "choice": "left"})  # fmt: skip
    assert not Vote.objects.filter(assignment=other).exists()


def test_vote_on_a_closed_study_is_refused_with_a_message(client, setup):
    study, (ann1, _) = setup
    client.force_login(ann1)
    _, form = _vote_form(client, study)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    response = client.post(reverse("voting:vote", args=[study.pk]), {**form, "choice": "left"}, follow=True)  # fmt: skip
    assert not Vote.objects.exists()
    assert (
        "closed" in response.content.decode().lower()
        or "закрыт" in response.content.decode().lower()
    )


def test_annotator_resumes_where_they_left_off(client, setup):
    study, (ann1, _) = setup
    client.force_login(ann1)
    _, first = _vote_form(client, study)
    client.post(reverse("voting:vote", args=[study.pk]), {**first, "choice": "left"})
    client.logout()
    client.force_login(ann1)
    html, second = _vote_form(client, study)
    assert second["assignment"] != first["assignment"]
    expected = Assignment.objects.filter(annotator=ann1).order_by("order")[1]
    assert int(second["assignment"]) == expected.pk
    assert "2 / 6" in html


def test_vote_page_never_names_a_model_and_runs_no_foreign_script(client, setup):
    study, (ann1, _) = setup
    client.force_login(ann1)
    forbidden = [study.model_a.name, study.model_b.name, study.model_a.path, study.model_b.path,
                 study.model_a.sha256[:12], study.model_b.sha256[:12]]  # fmt: skip
    for url in [reverse("voting:my_studies"), reverse("voting:vote", args=[study.pk]), reverse("voting:guidelines")]:  # fmt: skip
        html = client.get(url).content.decode()
        for secret in forbidden:
            assert secret not in html, (url, secret)
        assert script_problems(html) == []
    response = client.get(reverse("voting:vote", args=[study.pk]))
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_annotator_cannot_open_researcher_pages(client, setup):
    study, (ann1, _) = setup
    client.force_login(ann1)
    for url in [reverse("studies:list"), reverse("studies:detail", args=[study.pk]),
                reverse("studies:results", args=[study.pk]), reverse("catalog:models")]:  # fmt: skip
        assert client.get(url).status_code == 404


def test_sides_are_balanced_for_each_annotator(setup):
    study, annotators = setup
    for ann in annotators:
        lefts = list(
            Assignment.objects.filter(annotator=ann).values_list("left_model_id", flat=True)
        )
        assert lefts.count(study.model_a_id) == lefts.count(study.model_b_id) == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("engine", "expected"),
    [("django.contrib.sessions.backends.db", (4, 4)),
     ("django.contrib.sessions.backends.cached_db", (3, 3))],
)  # fmt: skip
def test_the_vote_page_and_a_vote_cost_a_fixed_handful_of_queries(
    client, two_models, settings, engine, expected
):
    """GET: the session (none when a shared cache holds sessions), the user with its role, the
    study with the progress counts (which also say the study is theirs), the next pair with
    its two answers. POST: session, user, the assignment (the annotator's, in this study, with
    the study's status), the insert. The same however many votes came before."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.SESSION_ENGINE = engine
    ann = factories.annotator("counted")
    study = factories.open_study_with_answers(factories.researcher(), two_models, [ann], n=6)
    client.force_login(ann)
    url = reverse("voting:vote", args=[study.pk])
    client.get(url)  # the first read fills the session cache
    counts = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as get:
            html = client.get(url).content.decode()
        fields = dict(re.findall(r'name="(assignment|shown)" value="([^"]+)"', html))
        with CaptureQueriesContext(connection) as post:
            client.post(url, {**fields, "choice": "left", "comment": ""})
        writes = [q for q in post.captured_queries if "SAVEPOINT" not in q["sql"]]
        counts.append((len(get.captured_queries), len(writes)))
    assert counts == [expected] * 3, counts
    assert Vote.objects.filter(assignment__annotator=ann).count() == 3


@pytest.mark.django_db
def test_the_vote_pages_one_query_screen_is_the_orm_screen_in_every_state(two_models):
    """selectors.vote_screen (written-out SQL) against screen_for(next_assignment(...)) (the
    ORM) as votes come in, with a pair held for review and an answer excluded on the way."""
    from sbs.studies.models import Pair
    from sbs.voting import selectors
    from sbs.voting.services import vote_record

    ann = factories.annotator("compared")
    study = factories.open_study_with_answers(factories.researcher(), two_models, [ann], n=6)
    Answer.objects.filter(run__model=study.model_b).update(text="ответ модели Б")
    seen = []
    for step in range(8):
        if step == 2:
            first = Pair.objects.filter(study=study).order_by("pk").first()
            Pair.objects.filter(pk=first.pk).update(status=Pair.Status.HELD)
        if step == 3:
            last = Pair.objects.filter(study=study).order_by("-pk").first()
            Answer.objects.filter(run__study=study, question=last.question_id,
                                  run__model=study.model_a).update(excluded=True)  # fmt: skip
        expected = selectors.next_assignment(ann, study)
        got = selectors.vote_screen(ann, study)
        assert got == (None if expected is None else selectors.screen_for(expected, study))
        if got is None:
            break
        seen.append((got.left_text, got.right_text))
        vote_record(annotator=ann, assignment_id=got.assignment_id, choice="left",
                    seconds_on_page=1.0, comment="")  # fmt: skip
    assert got is None and len(seen) >= 4
    assert {("ответ модели Б" in left) + ("ответ модели Б" in right) for left, right in seen} == {1}
