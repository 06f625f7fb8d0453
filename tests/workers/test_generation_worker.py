"""The job flow for real: a Celery worker process, the broker, the database, a real model."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from sbs.catalog import services as catalog_services
from sbs.studies import services
from sbs.studies.models import Answer, Assignment, GenerationRun, Pair, Study
from tests import factories
from tests.conftest import WorkerProcess, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def test_worker_generates_every_answer_and_opens_the_study(two_models, worker):
    owner = factories.researcher()
    annotators = [factories.annotator("a1"), factories.annotator("a2")]
    study = factories.draft_study(owner, two_models, n=6)
    services.study_add_annotators(study=study, users=annotators)

    services.study_start(study=study)

    def opened() -> bool:
        study.refresh_from_db()
        return study.status == Study.Status.OPEN

    wait_for(opened, 180, "the study to open", worker.log)
    answers = Answer.objects.filter(run__study=study)
    assert answers.count() == 12
    for answer in answers:
        assert answer.prompt_tokens > 5  # the chat template wraps the question
        assert 1 <= answer.new_tokens <= 8
        assert answer.seconds > 0
        assert answer.stop_reason in {"eos", "length"}
        assert answer.tokens_per_second > 0
    for run in study.runs.all():
        assert run.status == GenerationRun.Status.DONE
        assert run.attempts == 1 and run.device == "cpu"
        assert run.done_count == run.total_count == 6
    assert Pair.objects.filter(study=study).count() == 6
    assert Assignment.objects.filter(pair__study=study).count() == 12


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="redelivery after SIGKILL needs Redis")
def test_killed_worker_mid_run_loses_and_duplicates_nothing(
    two_models, model_store, tmp_path, purge_queues
):
    owner = factories.researcher()
    study = factories.draft_study(owner, two_models, n=24)
    study.generation.update({"max_new_tokens": 16, "batch_size": 1})
    study.save(update_fields=["generation"])
    # A short visibility timeout so the test need not wait hours for the redelivery; the
    # task time limit below it must still let the other model's whole run (24 answers, its
    # reference timing) finish on a slow shared machine (19 s did not, on 2026-12-08).
    env = {
        "JOB_LEASE_SECONDS": "4",  # the dead worker's lease ends soon after it
        "BROKER_VISIBILITY_TIMEOUT": "45",
        "CELERY_TASK_TIME_LIMIT": "44",
        "CELERY_TASK_SOFT_TIME_LIMIT": "42",
    }
    first = WorkerProcess(model_store, tmp_path / "w1.log", env)
    first.start("first")
    try:
        services.study_start(study=study)
        run = study.runs.order_by("pk").first()

        def midway() -> bool:
            run.refresh_from_db()
            return 3 <= run.done_count < run.total_count

        wait_for(midway, 120, "the first run to be half done", first.log)
        first.kill()
    finally:
        first.stop()
    killed_at = Answer.objects.filter(run=run).count()
    assert killed_at < 24

    second = WorkerProcess(model_store, tmp_path / "w2.log", env)
    second.start("second")
    try:

        def finished() -> bool:
            run.refresh_from_db()
            return run.status == GenerationRun.Status.DONE

        wait_for(finished, 180, "the redelivered run to finish", second.log)
    finally:
        second.stop()
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.DONE
    assert run.attempts == 2  # claimed again after the crash
    per_question = Answer.objects.filter(run=run).values_list("question_id", flat=True)
    assert len(per_question) == len(set(per_question)) == 24


def test_a_broken_model_fails_its_run_with_the_error_on_the_row(two_models, model_store):
    from workers.tasks import generate_run

    owner = factories.researcher()
    study = factories.draft_study(owner, two_models, n=3)
    # Damage model B's config after registration, as a bad upload or a disk fault would.
    config = Path(catalog_services.model_path(study.model_b)) / "config.json"
    config.write_text('{"model_type": "no-such-architecture"}')
    runs = [services.study_start(study=study)][0]
    for run in runs:
        generate_run.apply(args=[run.pk])
    ok, broken = (GenerationRun.objects.get(pk=r.pk) for r in runs)
    assert ok.status == GenerationRun.Status.DONE
    assert broken.status == GenerationRun.Status.FAILED
    assert "no-such-architecture" in broken.error
    study.refresh_from_db()
    assert study.status == Study.Status.GENERATING  # not opened with one side missing


def test_a_run_that_keeps_dying_ends_failed_after_bounded_attempts(two_models):
    owner = factories.researcher()
    study = factories.draft_study(owner, two_models, n=2)
    run = GenerationRun.objects.create(study=study, model=study.model_a, total_count=2)
    limit = settings.GENERATION_MAX_ATTEMPTS
    for _ in range(limit):  # each claim is a delivery whose worker then died: its lease ends
        assert services.run_claim(run_id=run.pk, worker="w", device="cpu", max_attempts=limit)
        GenerationRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now())
    assert not services.run_claim(run_id=run.pk, worker="w", device="cpu", max_attempts=limit)
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.FAILED
    assert f"gave up after {limit} attempts" in run.error


def test_a_hung_worker_is_taken_over_and_writes_nothing_when_it_wakes(
    two_models, model_store, tmp_path, purge_queues
):
    """SIGSTOP a worker mid-run (a hung host): once its lease expires another worker's
    reaper hands the run over; the hung one, continued, has every write refused."""
    import signal

    owner = factories.researcher()
    study = factories.draft_study(owner, two_models, n=16)
    study.generation.update({"max_new_tokens": 24, "batch_size": 1})
    study.save(update_fields=["generation"])
    env = {"JOB_LEASE_SECONDS": "3"}
    first = WorkerProcess(model_store, tmp_path / "w1.log", env)
    second = WorkerProcess(model_store, tmp_path / "w2.log", env)
    first.start("first")
    try:
        services.study_start(study=study)
        run = study.runs.order_by("pk").first()

        def midway() -> bool:
            run.refresh_from_db()
            return 2 <= run.done_count < run.total_count

        wait_for(midway, 120, "the first run to be under way", first.log)
        os.killpg(first.proc.pid, signal.SIGSTOP)
        second.start("second")

        def opened() -> bool:
            study.refresh_from_db()
            return study.status == Study.Status.OPEN

        wait_for(opened, 240, "the second worker to finish both runs", second.log)
        run.refresh_from_db()
        assert run.fence == 2 and "second" in run.worker
        before = sorted(Answer.objects.filter(run=run).values_list("question_id", "fence", "text"))
        assert len(before) == 16
        os.killpg(first.proc.pid, signal.SIGCONT)
        wait_for(lambda: "lease" in first.log() and "lost" in first.log(), 60,
                 "the woken worker to notice it lost its lease", first.log)  # fmt: skip
        time.sleep(1)
        after = sorted(Answer.objects.filter(run=run).values_list("question_id", "fence", "text"))
        assert after == before
        run.refresh_from_db()
        assert run.status == GenerationRun.Status.DONE and run.fence == 2
    finally:
        if first.proc and first.proc.poll() is None:
            os.killpg(first.proc.pid, signal.SIGCONT)
        first.stop()
        second.stop()


def test_each_run_times_the_reference_text_and_the_report_divides_the_two(two_models):
    """The controlled measure: both runs feed the same reference text through their model
    (forced decoding and one pass), and the report's speed-up is original time / adapted."""
    from transformers import AutoTokenizer

    from adaptation.speed import reference_text
    from sbs.analysis.selectors import speed_dicts
    from sbs.analysis.stats.summary import speed_section
    from workers.tasks import generate_run

    study = factories.draft_study(factories.researcher(), two_models, n=2)
    for run in services.study_start(study=study):
        generate_run.apply(args=[run.pk])
    a = GenerationRun.objects.get(study=study, model=study.model_a)
    b = GenerationRun.objects.get(study=study, model=study.model_b)
    text = reference_text()
    tokenizer = AutoTokenizer.from_pretrained(catalog_services.model_path(study.model_a))
    for run in (a, b):
        measured = run.reference_speed
        assert measured["chars"] == len(text) > 1000
        assert measured["tokens"] == len(tokenizer(text, add_special_tokens=False)["input_ids"])
        assert measured["forced_seconds"] > measured["single_pass_seconds"] > 0
    speed = speed_section(speed_dicts(study), study.model_a.name, study.model_b.name, None)
    ratio = speed["ratio"]
    assert ratio["reference_forced_speedup"] == pytest.approx(
        a.reference_speed["forced_s_per_1000_chars"] / b.reference_speed["forced_s_per_1000_chars"]
    )
    assert ratio["reference_single_pass_speedup"] > 0
    GenerationRun.objects.filter(pk=b.pk).update(reference_speed=None)  # an older run
    speed = speed_section(speed_dicts(study), study.model_a.name, study.model_b.name, None)
    assert speed["ratio"]["reference_forced_speedup"] is None
