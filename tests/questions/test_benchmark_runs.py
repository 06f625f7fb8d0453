"""Benchmark runs: started from the study or model page, scored under a lease with every
item's result stored, resumed without scoring twice; the forgetting section of the report."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from adaptation.benchmarks import MCItem
from adaptation.modelio import load_model
from adaptation.scoring import ChoiceConfig, score_choices
from sbs.analysis.models import ReportCache
from sbs.catalog import services as catalog_services
from sbs.questions import selectors, services
from sbs.questions.models import Benchmark, BenchmarkResult, BenchmarkRun
from tests import factories
from tests.analysis.test_report_fixtures import fast_users, make_voted_study  # noqa: F401
from tests.conftest import ROOT, wait_for
from workers.tasks import compute_report
from workers.tasks.benchmark import run_benchmark

GENERAL = ROOT / "data" / "benchmark_general_ru.jsonl"


def general() -> Benchmark:
    return services.benchmark_import(
        name="general", data=GENERAL.read_bytes(), filename="general.jsonl"
    )


@pytest.mark.django_db
def test_the_study_page_starts_a_run_per_model_and_the_task_stores_every_item(
    client, two_models, tmp_path
):
    owner = factories.researcher()
    study = factories.draft_study(owner, two_models)
    benchmark = general()
    client.force_login(owner)
    url = reverse("questions:study_benchmarks", args=[study.pk])
    page = client.get(url).content.decode()
    assert "general" in page and two_models[0].name in page
    response = client.post(url, {"benchmarks": [benchmark.pk], "prompt_format": "cloze"})
    assert response.status_code == 302
    runs = list(BenchmarkRun.objects.order_by("model__name"))
    assert len(runs) == 2 and {r.model_id for r in runs} == {m.pk for m in two_models}
    assert all(r.status == BenchmarkRun.Status.PENDING and r.total_count == 40 for r in runs)

    run = BenchmarkRun.objects.get(model=two_models[0])
    assert run_benchmark.apply(args=[run.pk]).get() == "done"
    run.refresh_from_db()
    assert run.status == BenchmarkRun.Status.DONE and run.done_count == 40, run.error
    results = list(BenchmarkResult.objects.filter(run=run).select_related("item"))
    assert len(results) == 40
    # what was stored is what the library computes for the same items
    loaded = load_model(
        catalog_services.model_path(two_models[0]), cache_dir=tmp_path, device="cpu"
    )
    items = [
        MCItem(r.item.question, tuple(r.item.choices), r.item.answer, context=r.item.context)
        for r in results
    ]
    expected = score_choices(loaded.model, loaded.tokenizer, items, ChoiceConfig())
    for stored, score in zip(results, expected, strict=True):
        assert stored.logprobs == pytest.approx(list(score.logprobs), abs=1e-4)
        assert stored.correct == score.correct and stored.correct_norm == score.correct_norm
    summary = run.summary
    assert summary["n"] == 40 and set(summary["categories"]) == {
        "english", "general_knowledge", "reasoning_over_text", "text_understanding"
    }  # fmt: skip
    assert summary["acc"] == pytest.approx(sum(r.correct for r in results) / 40)
    assert run_benchmark.apply(args=[run.pk]).get() == "not claimed"  # done: never twice

    html = client.get(url).content.decode()
    assert "40 / 40" in html


@pytest.mark.django_db
def test_a_redelivered_run_scores_only_the_items_not_stored(two_models):
    benchmark = general()
    run = services.benchmark_run_start(model=two_models[0], benchmark=benchmark)
    first = list(benchmark.items.order_by("position")[:5])
    BenchmarkResult.objects.bulk_create(
        BenchmarkResult(run=run, item=item, logprobs=[-1.0] * len(item.choices),
                        tokens=[1] * len(item.choices), chars=[1] * len(item.choices),
                        predicted=0, predicted_norm=0, correct=item.answer == 0,
                        correct_norm=item.answer == 0)
        for item in first
    )  # fmt: skip
    assert run_benchmark.apply(args=[run.pk]).get() == "done"
    run.refresh_from_db()
    assert run.done_count == 40 and run.status == BenchmarkRun.Status.DONE
    kept = BenchmarkResult.objects.filter(run=run, item__in=first)
    assert all(r.logprobs == [-1.0] * len(r.logprobs) for r in kept)  # not scored again
    assert BenchmarkResult.objects.filter(run=run).exclude(item__in=first).count() == 35


@pytest.mark.django_db
def test_one_run_per_model_benchmark_and_format_and_a_failed_one_is_sent_again(two_models):
    benchmark = general()
    run = services.benchmark_run_start(model=two_models[0], benchmark=benchmark)
    assert services.benchmark_run_start(model=two_models[0], benchmark=benchmark).pk == run.pk
    lettered = services.benchmark_run_start(
        model=two_models[0], benchmark=benchmark, prompt_format="lettered"
    )
    assert lettered.pk != run.pk
    BenchmarkRun.objects.filter(pk=run.pk).update(status=BenchmarkRun.Status.FAILED, attempts=3)
    again = services.benchmark_run_start(model=two_models[0], benchmark=benchmark)
    assert again.pk == run.pk and again.status == BenchmarkRun.Status.PENDING
    assert again.attempts == 0
    with pytest.raises(services.ServiceError, match="Unknown prompt format"):
        services.benchmark_run_start(model=two_models[0], benchmark=benchmark, prompt_format="x")


@pytest.mark.django_db
def test_the_study_benchmarks_page_is_its_owners_and_the_model_page_starts_runs(client, two_models):
    study = factories.draft_study(factories.researcher(), two_models)
    other = factories.researcher("other")
    client.force_login(other)
    assert client.get(reverse("questions:study_benchmarks", args=[study.pk])).status_code == 404
    benchmark = general()
    url = reverse("questions:model_benchmarks", args=[two_models[1].pk])
    response = client.post(url, {"benchmarks": [benchmark.pk], "prompt_format": "lettered"})
    assert response.status_code == 302
    [run] = BenchmarkRun.objects.all()
    assert (run.model_id, run.prompt_format) == (two_models[1].pk, "lettered")


def _synthetic_runs(voted, benchmark: Benchmark, forgets: bool) -> None:
    """Finished runs of both models of a voted study with chosen per-item outcomes: the
    original right on every item, the adapted right on all or on none."""
    for model, right in ((voted.study.model_a, True), (voted.study.model_b, not forgets)):
        per_char = 2.0 if right else 2.5  # the forgetting model also reads text worse
        run = BenchmarkRun.objects.create(
            model=model, benchmark=benchmark, status=BenchmarkRun.Status.DONE, total_count=40,
            text_bits={"en_general": {"chars": [100, 200, 300],
                                      "bits": [per_char * 100, per_char * 200, per_char * 300]}},
        )  # fmt: skip
        BenchmarkResult.objects.bulk_create(
            BenchmarkResult(
                run=run,
                item=item,
                logprobs=[0.0] * len(item.choices),
                tokens=[1] * len(item.choices),
                chars=[1] * len(item.choices),
                predicted=item.answer if right else (item.answer + 1) % len(item.choices),
                predicted_norm=item.answer if right else (item.answer + 1) % len(item.choices),
                correct=right,
                correct_norm=right,
            )  # fmt: skip
            for item in benchmark.items.all()
        )
        BenchmarkRun.objects.filter(pk=run.pk).update(done_count=40)


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_users")
def test_the_forgetting_section_shows_on_the_page_and_in_the_exports(client):
    voted = make_voted_study(n=6)
    client.force_login(voted.owner)
    page = reverse("studies:results", args=[voted.study.pk])
    client.get(page)
    row = ReportCache.objects.get(study=voted.study)
    assert compute_report.apply(args=[row.pk]).get() == "done"
    row.refresh_from_db()
    assert row.report["forgetting"] is None  # no benchmark runs yet
    assert 'id="forgetting-section"' not in client.get(page).content.decode()

    _synthetic_runs(voted, general(), forgets=True)
    client.get(page)  # the benchmark runs change the fingerprint: a new report row
    row = ReportCache.objects.filter(study=voted.study).latest("enqueued_at")
    assert "/bench-" in row.fingerprint
    assert compute_report.apply(args=[row.pk]).get() == "done"
    row.refresh_from_db()
    table = row.report["forgetting"]
    overall = table["rows"][0]
    assert (overall["category"], overall["n"], overall["original"], overall["adapted"]) == (
        "", 40, 1.0, 0.0
    )  # fmt: skip
    assert overall["forgets"] and overall["drop_low"] == 1.0
    assert [r["category"] for r in table["rows"][1:]] == [
        "english", "general_knowledge", "reasoning_over_text", "text_understanding"
    ]  # fmt: skip
    # 10 discordant items of 10 in each category: p = 2^-10, Holm x5 stays below 0.05
    assert all(r["forgets"] for r in table["rows"])
    assert "forgetting" in row.plots["en"] and "forgetting" in row.plots["ru"]

    [text_row] = row.report["texts"]["rows"]
    assert text_row["category"] == "en_general" and text_row["change"] == pytest.approx(0.5)
    assert text_row["forgets"] and text_row["relative_change"] == pytest.approx(0.25)
    html = client.get(page).content.decode()
    assert 'id="forgetting-section"' in html and "reasoning_over_text" in html.replace("<wbr>", "")
    assert 'id="texts-section"' in html
    data = json.loads(client.get(reverse("studies:export", args=[voted.study.pk, "json"])).content)
    assert data["report"]["forgetting"]["flagged"][0] == "general"
    offline = client.get(reverse("studies:export", args=[voted.study.pk, "html"])).content
    assert b'id="forgetting-section"' in offline


@pytest.mark.django_db
def test_forgetting_inputs_pair_the_items_both_models_scored(two_models):
    benchmark = general()
    a = services.benchmark_run_start(model=two_models[0], benchmark=benchmark)
    assert selectors.forgetting_inputs(*two_models) == []
    assert selectors.benchmark_fingerprint(*two_models) == ""
    assert run_benchmark.apply(args=[a.pk]).get() == "done"
    b = services.benchmark_run_start(model=two_models[1], benchmark=benchmark)
    assert selectors.forgetting_inputs(*two_models) == []  # the adapted model has no run yet
    assert run_benchmark.apply(args=[b.pk]).get() == "done"
    [entry] = selectors.forgetting_inputs(*two_models)
    assert entry["benchmark"] == "general" and len(entry["answer"]) == 40
    # the same weights under two names: the same answers
    assert entry["original"] == entry["adapted"]
    assert selectors.benchmark_fingerprint(*two_models)

    # The same runs scored the shipped held-out texts, paragraph by paragraph.
    from adaptation.benchmarks import heldout_texts
    from sbs.analysis.stats.text_bpc import text_bpc_table

    texts = selectors.text_bpc_inputs(*two_models)
    shipped = heldout_texts()
    assert sorted(texts) == sorted(shipped)  # English included
    for category, data in texts.items():
        assert data["chars"] == [len(p) for p in shipped[category]]
        assert all(bits > 0 for bits in data["original"])
        assert data["original"] == data["adapted"]  # the same weights
    rows = text_bpc_table(texts, rounds=200)["rows"]
    assert all(r["change"] == 0 and not r["forgets"] and r["original"] > 1 for r in rows)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_a_real_worker_scores_both_models_of_a_study(client, two_models, worker):
    owner = factories.researcher()
    study = factories.draft_study(owner, two_models)
    benchmark = general()
    client.force_login(owner)
    client.post(
        reverse("questions:study_benchmarks", args=[study.pk]),
        {"benchmarks": [benchmark.pk], "prompt_format": "lettered"},
    )

    def finished() -> bool:
        return (
            BenchmarkRun.objects.filter(status=BenchmarkRun.Status.DONE).count() == 2
            or BenchmarkRun.objects.filter(status=BenchmarkRun.Status.FAILED).exists()
        )

    wait_for(finished, 240, "both benchmark runs", worker.log)
    runs = list(BenchmarkRun.objects.all())
    assert all(r.status == BenchmarkRun.Status.DONE for r in runs), [r.error for r in runs]
    assert all(r.done_count == 40 and r.summary["n"] == 40 for r in runs)
    assert BenchmarkResult.objects.count() == 80
    assert runs[0].summary == runs[1].summary  # the same weights under two names
