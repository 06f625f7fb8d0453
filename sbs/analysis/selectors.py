"""From database rows to the plain tables the statistics modules take."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import pandas as pd

from sbs.analysis.stats.frame import vote_frame
from sbs.studies.models import Answer, Study
from sbs.voting.models import Vote


def study_vote_frame(study: Study) -> pd.DataFrame:
    """The canonical vote frame of a study: model names, never screen positions alone."""
    rows = (
        Vote.objects.filter(
            assignment__pair__study=study, assignment__pair__question__answers__excluded=False
        )
        .distinct()
        .values(
            "assignment__pair__question__external_id",
            "assignment__pair__question__category",
            "assignment__annotator__username",
            "assignment__left_model__name",
            "assignment__repeat_of",
            "choice",
            "seconds_on_page",
        )
    )
    a, b = study.model_a.name, study.model_b.name
    records = [
        {
            "question": r["assignment__pair__question__external_id"],
            "category": r["assignment__pair__question__category"] or "-",
            "annotator": r["assignment__annotator__username"],
            "model_a": a,
            "model_b": b,
            "left": r["assignment__left_model__name"],
            "choice": r["choice"],
            "seconds": r["seconds_on_page"],
            "repeat": r["assignment__repeat_of"] is not None,
        }
        for r in rows
    ]
    if not records:
        return vote_frame(
            pd.DataFrame(
                columns=[
                    "question",
                    "category",
                    "annotator",
                    "model_a",
                    "model_b",
                    "left",
                    "choice",
                    "seconds",
                    "repeat",
                ]
            )
        )
    return vote_frame(records)


@dataclass(frozen=True)
class SpeedRow:
    model: str
    answers: int
    median_new_tokens: float
    median_tokens_per_second: float
    median_chars_per_second: float
    median_chars: float
    eos_share: float


def speed_rows(study: Study) -> list[SpeedRow]:
    """Per model: medians over its answers of tokens, tokens/s and characters/s."""
    out = []
    for model in (study.model_a, study.model_b):
        answers = list(
            Answer.objects.filter(run__study=study, run__model=model).only(
                "text", "new_tokens", "seconds", "stop_reason"
            )
        )
        if not answers:
            continue
        out.append(
            SpeedRow(
                model=model.name,
                answers=len(answers),
                median_new_tokens=statistics.median(a.new_tokens for a in answers),
                median_tokens_per_second=statistics.median(a.tokens_per_second for a in answers),
                median_chars_per_second=statistics.median(a.chars_per_second for a in answers),
                median_chars=statistics.median(len(a.text) for a in answers),
                eos_share=sum(a.stop_reason == "eos" for a in answers) / len(answers),
            )
        )
    return out
