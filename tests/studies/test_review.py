"""An answer that names its model holds its pair back until the researcher decides."""

from __future__ import annotations

import pytest

from sbs.core import jobs
from sbs.studies import services
from sbs.studies.models import Answer, Assignment, GenerationRun, Pair
from sbs.voting import selectors
from sbs.voting.services import VoteError, vote_record
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def flagged_study(two_models):
    """A 3-question study; model B's answer to the first question says it is SmolLM."""
    owner = factories.researcher()
    annotator = factories.annotator("ann")
    study = factories.draft_study(owner, two_models, n=3)
    study.annotators.add(annotator)
    for model in two_models:
        run = GenerationRun.objects.create(study=study, model=model, status="done")
        for q in study.question_set.questions.all():
            text = f"Ответ на {q.external_id}."
            flagged = model == two_models[1] and q.position == 0
            if flagged:
                text = "Я — SmolLM, и вот мой ответ."
            Answer.objects.create(run=run, question=q, text=text, prompt_tokens=5,
                                  new_tokens=5, seconds=0.1, stop_reason="eos",
                                  self_identifies=flagged)  # fmt: skip
    study.status = "generating"
    study.save(update_fields=["status"])
    assert services.study_open_if_ready(study_id=study.pk)
    study.refresh_from_db()
    flagged = Answer.objects.get(run__study=study, self_identifies=True)
    return study, annotator, flagged


def _seen(study, user) -> list[str]:
    """Every text the annotator is shown while voting through the study (tie each time)."""
    texts = []
    while (a := selectors.next_assignment(user, study)) is not None:
        screen = selectors.screen_for(a, study)
        texts += [screen.left_text, screen.right_text]
        vote_record(annotator=user, assignment_id=a.pk, choice="tie", seconds_on_page=1)
    return texts


def test_a_flagged_answer_is_never_shown_before_review(flagged_study):
    study, annotator, flagged = flagged_study
    pair = Pair.objects.get(study=study, question=flagged.question)
    assert pair.status == Pair.Status.HELD
    seen = _seen(study, annotator)
    assert len(seen) == 4 and flagged.text not in seen
    assert selectors.progress(annotator, study)[:3] == (2, 3, 1)  # done, total, held
    held = Assignment.objects.get(pair=pair, annotator=annotator)
    with pytest.raises(VoteError):  # posting the held assignment's id directly
        vote_record(annotator=annotator, assignment_id=held.pk, choice="left", seconds_on_page=1)


def test_show_releases_the_pair(flagged_study):
    study, annotator, flagged = flagged_study
    assert services.answer_review(study=study, answer_id=flagged.pk, decision="show")
    assert flagged.text in _seen(study, annotator)
    assert selectors.progress(annotator, study)[:3] == (3, 3, 0)


def test_exclude_withdraws_the_pair_from_annotators(flagged_study, client):
    study, annotator, flagged = flagged_study
    services.answer_review(study=study, answer_id=flagged.pk, decision="exclude")
    assert flagged.text not in _seen(study, annotator)
    assert selectors.progress(annotator, study)[:3] == (2, 2, 0)
    client.force_login(annotator)
    page = client.get(f"/annotate/{study.pk}/").content.decode()
    assert "All done" in page and flagged.text not in page


def test_exclude_after_votes_removes_the_pair_from_view_and_analysis(flagged_study):
    study, annotator, flagged = flagged_study
    services.answer_review(study=study, answer_id=flagged.pk, decision="show")
    _seen(study, annotator)
    services.answer_review(study=study, answer_id=flagged.pk, decision="exclude")
    from sbs.analysis.selectors import study_vote_frame

    assert len(study_vote_frame(study)) == 2  # the third question's vote left out
    assert selectors.progress(annotator, study)[:3] == (2, 2, 0)


def test_regenerate_holds_the_pair_until_a_clean_answer_arrives(
    flagged_study, django_capture_on_commit_callbacks
):
    study, annotator, flagged = flagged_study
    with django_capture_on_commit_callbacks(execute=False) as sent:
        services.answer_review(study=study, answer_id=flagged.pk, decision="regenerate")
    assert len(sent) == 1  # the run is sent to a worker again
    run = GenerationRun.objects.get(pk=flagged.run_id)
    assert run.status == "pending" and not Answer.objects.filter(pk=flagged.pk).exists()
    pair = Pair.objects.get(study=study, question=flagged.question)
    assert pair.status == Pair.Status.HELD and pair.regenerations == 1
    assert services.regeneration_offsets(run=run) == {flagged.question_id: 1}
    lease = services.run_claim(run_id=run.pk, worker="w", device="cpu", max_attempts=3)
    assert lease is not None
    new = services.NewAnswer(question_id=flagged.question_id, text="Столица — Москва.",
                             prompt_tokens=5, new_tokens=4, seconds=0.1, tokenize_seconds=0.0,
                             batch_size=1, stop_reason="eos")  # fmt: skip
    services.answers_upsert(lease=lease, answers=[new])
    services.run_finish(lease=lease)
    pair.refresh_from_db()
    assert pair.status == Pair.Status.SHOWN
    assert "Столица — Москва." in _seen(study, annotator)


def test_a_regenerated_answer_that_still_names_its_model_stays_held(flagged_study):
    study, _, flagged = flagged_study
    services.answer_review(study=study, answer_id=flagged.pk, decision="regenerate")
    lease = jobs.job_claim(GenerationRun, flagged.run_id, worker="w", device="cpu", max_attempts=3)
    again = services.NewAnswer(question_id=flagged.question_id, text="I am SmolLM, by the way.",
                               prompt_tokens=5, new_tokens=4, seconds=0.1, tokenize_seconds=0.0,
                               batch_size=1, stop_reason="eos")  # fmt: skip
    services.answers_upsert(lease=lease, answers=[again])
    assert Pair.objects.get(study=study, question=flagged.question).status == Pair.Status.HELD
