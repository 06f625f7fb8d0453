"""The speed table's loop measure: each model's mean distinct 3-gram share, from its answers."""

from __future__ import annotations

import pytest

from sbs.analysis.selectors import speed_rows
from sbs.studies.models import Answer
from tests import factories


@pytest.mark.django_db
def test_a_model_caught_in_a_loop_shows_a_low_distinct_share(two_models):
    study = factories.open_study_with_answers(factories.researcher(), two_models, [], n=4)
    Answer.objects.filter(run__model=study.model_b).update(text="толькох, " * 12)
    Answer.objects.filter(run__model=study.model_a).update(
        text="Волга впадает в Каспийское море, а Нева в Финский залив."
    )
    shares = {row.model: row.distinct_3gram_share for row in speed_rows(study)}
    assert shares[study.model_a.name] == 1.0
    assert shares[study.model_b.name] == pytest.approx(2 / 22)  # 24 tokens, 2 distinct triples
