"""The φ curve of an adapted model whose recipe holds a merging-factor sweep: a report
section (table and plot) on the results page, in both languages and in the JSON export."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from django.urls import reverse

from adaptation.merging import PhiScore, SweepResult
from sbs.analysis.models import ReportCache
from sbs.analysis.plots import phi_curve_svg
from tests.analysis.test_plots import _check
from tests.analysis.test_report_fixtures import fast_users, make_voted_study  # noqa: F401
from workers.tasks import compute_report


def _sweep() -> SweepResult:
    """A sweep as merging.sweep_merge_factor records it (grid out of order on purpose)."""
    rows = [(1.0, 2.60, 0.05, 0.01), (0.0, 3.00, 0.0, 0.0), (0.5, 2.70, 0.01, 0.015),
            (2 / 3, 2.66, 0.015, 0.018)]  # fmt: skip
    scores = [
        PhiScore(
            phi=phi,
            bpc=bpc,
            gain=3.0 - bpc,
            relative_gain=(3.0 - bpc) / 3.0,
            forgetting_by_category={"en_general": en, "ru_general_knowledge": gk},
            forgetting=max(en, gk),
            within_tolerance=max(en, gk) <= 0.02,
        )  # fmt: skip
        for phi, bpc, en, gk in rows
    ]
    return SweepResult(scores=scores, best_phi=2 / 3, select_by="tradeoff", tolerance=0.02)


def _computed(client, voted) -> tuple[str, ReportCache]:
    """The results page's URL and its report, computed by the job as the worker would."""
    client.force_login(voted.owner)
    page = reverse("studies:results", args=[voted.study.pk])
    client.get(page)
    row = ReportCache.objects.filter(study=voted.study).latest("pk")
    assert compute_report.apply(args=[row.pk]).get() == "done"
    row.refresh_from_db()
    return page, row


def test_the_phi_plot_is_a_well_formed_svg_with_cyrillic_labels():
    svg = phi_curve_svg(
        [0, 0.5, 1], [0.0, 0.3, 0.4], {"en_general": [0, 0.01, 0.05]}, chosen=0.5,
        tolerance=0.02, title="Коэффициент φ", gain_label="выигрыш", chosen_label="выбран",
    )  # fmt: skip
    _check(svg, "Коэффициент φ", "выигрыш", "выбран", "en_general")


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_users")
def test_the_results_page_shows_the_phi_curve_of_a_merged_adapted_model(client):
    voted = make_voted_study(n=4)
    adapted = voted.study.model_b
    adapted.recipe = {"method": "russian_vocabulary_adaptation",
                      "steps": {"merge": asdict(_sweep())}}  # fmt: skip
    adapted.save(update_fields=["recipe"])
    page, row = _computed(client, voted)
    merge = row.report["merge"]
    assert [p["phi"] for p in merge["points"]] == [0.0, 0.5, 2 / 3, 1.0]  # by φ
    assert merge["best_phi"] == 2 / 3 and merge["categories"] == [
        "en_general", "ru_general_knowledge"
    ]  # fmt: skip
    assert merge["points"][3]["by_category"] == [0.05, 0.01]
    assert "phi" in row.plots["en"] and "phi" in row.plots["ru"]

    html = client.get(page, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="merge-section"' in html and "0.667 <b>(chosen)</b>" in html
    assert "5.0%" in html  # φ = 1 forgets 5 % of English: beyond the tolerance, in red
    russian = client.get(page, HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "0,667 <b>(выбран)</b>" in russian
    data = json.loads(client.get(reverse("studies:export", args=[voted.study.pk, "json"])).content)
    assert data["report"]["merge"]["select_by"] == "tradeoff"


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_users")
def test_no_sweep_no_section(client):
    voted = make_voted_study(n=4)
    page, row = _computed(client, voted)
    assert row.report["merge"] is None
    assert 'id="merge-section"' not in client.get(page).content.decode()


@pytest.mark.django_db
def test_the_model_page_shows_the_recipe_and_the_phi_curve(client):
    from sbs.catalog.models import ModelEntry
    from tests import factories

    parent = ModelEntry.objects.create(name="base", kind="hf_folder", path="base", sha256="b" * 64)
    recipe = {
        "config": {"vocab_size": 32000},
        "steps": {
            "corpus": {"train_lines": 900, "heldout_lines": 20,
                       "dedup": {"dropped": 77, "heldout_overlap": 0.028}},
            "tokenizer": {"type": "unigram", "vocab_size": 32000,
                          "fertility": {"original": {"tokens_per_word": 5.2041},
                                        "new": {"tokens_per_word": 1.6566}}},
            "swap": {"init": "mean", "head": {"chosen": "frequency",
                                              "bpc": {"tied": 3.673, "frequency": 2.737}}},
            "train": {"steps": 40, "losses": [9, 9, 8, 8, 8, 8, 8]},
            "merge": asdict(_sweep()),
        },
    }  # fmt: skip
    child = ModelEntry.objects.create(
        name="base-ru", kind="hf_folder", path="ru", sha256="c" * 64, parent=parent, recipe=recipe
    )
    client.force_login(factories.researcher())
    html = client.get(reverse("catalog:detail", args=[child.pk])).content.decode()
    for text in ("5.20 → 1.66", "frequency (tied 3.673, frequency 2.737)", "40; 8.000",
                 "0.667 (tradeoff)", 'id="merge-section"', "c" * 64, ">base</a>", "2.8"):  # fmt: skip
        assert text in html, text
    assert "data:image/svg+xml;base64," in html  # the plot
    russian = client.get(reverse("catalog:detail", args=[child.pk]), HTTP_ACCEPT_LANGUAGE="ru")
    assert (
        "5,20 → 1,66" in russian.content.decode() and "0,667 (tradeoff)" in russian.content.decode()
    )
    plain = client.get(reverse("catalog:detail", args=[parent.pk])).content.decode()
    assert 'id="recipe"' not in plain and ">base-ru</a>" in plain  # its child is linked
    models = client.get(reverse("catalog:models")).content.decode()
    assert reverse("catalog:detail", args=[child.pk]) in models
