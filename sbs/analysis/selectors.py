"""From database rows to the plain tables the statistics modules take."""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet

from adaptation.repetition import mean_distinct_share
from sbs.analysis.stats.frame import COLUMNS, vote_frame
from sbs.studies.models import Answer, GenerationRun, Study
from sbs.voting.models import Vote


def study_votes(study: Study) -> QuerySet[Vote]:
    """Every vote of the study, in the order they were cast."""
    return Vote.objects.filter(assignment__pair__study=study).order_by("created_at", "pk")


def _excluded(study: Study, pair: str) -> Exists:
    """Whether one of the two answers of the pair at ``pair`` (a path to a Pair from the
    outer query) is excluded: such a pair is out of the analysis."""
    return Exists(
        Answer.objects.filter(
            Q(run__model=OuterRef(f"{pair}__model_x")) | Q(run__model=OuterRef(f"{pair}__model_y")),
            run__study=study,
            excluded=True,
            question=OuterRef(f"{pair}__question"),
        )
    )


def votes_fingerprint(study: Study) -> str:
    """The state of a study's votes: count, latest change, answers excluded.

    Any new or changed vote moves the count or the latest ``updated_at``; excluding an
    answer moves the last part. Equal fingerprints mean the same analysis input.
    """
    agg = study_votes(study).aggregate(n=Count("pk"), last=Max("updated_at"))
    excluded = Answer.objects.filter(run__study=study, excluded=True).count()
    last = agg["last"].isoformat() if agg["last"] else "-"
    return f"v{agg['n']}@{last}/x{excluded}"


def study_vote_frame(study: Study) -> pd.DataFrame:
    """The canonical vote frame of a study: model names, never screen positions alone.

    Each vote's model_a and model_b are its pair's two systems, in the study's order. A
    pair with an excluded answer (in this study) is left out of the analysis.
    """
    rows = (
        study_votes(study)
        .exclude(_excluded(study, "assignment__pair"))
        .values(
            "assignment__pair__question__external_id",
            "assignment__pair__question__category",
            "assignment__annotator__username",
            "assignment__pair__model_x__name",
            "assignment__pair__model_y__name",
            "assignment__left_model__name",
            "assignment__repeat_of",
            "choice",
            "seconds_on_page",
        )
    )
    records = [
        {
            "question": r["assignment__pair__question__external_id"],
            "category": r["assignment__pair__question__category"] or "-",
            "annotator": r["assignment__annotator__username"],
            "model_a": r["assignment__pair__model_x__name"],
            "model_b": r["assignment__pair__model_y__name"],
            "left": r["assignment__left_model__name"],
            "choice": r["choice"],
            "seconds": r["seconds_on_page"],
            "repeat": r["assignment__repeat_of"] is not None,
        }
        for r in rows
    ]
    if not records:
        return vote_frame(pd.DataFrame(columns=list(COLUMNS)))
    return vote_frame(records)


@dataclass(frozen=True)
class SpeedRow:
    model: str
    answers: int
    # None: no answer of this model recorded it (imported answers may carry no timings)
    median_new_tokens: float | None
    median_tokens_per_second: float | None
    median_chars_per_second: float | None
    median_chars: float
    eos_share: float | None
    # loops: the mean share of distinct word 3-grams in an answer (1 = no repetition)
    distinct_3gram_share: float | None = None
    # the controlled measure: the fixed reference text, timed in the generation's process
    reference_chars: int | None = None
    reference_tokens: int | None = None
    reference_forced_s_per_1000_chars: float | None = None
    reference_single_pass_s_per_1000_chars: float | None = None


def _median(values: Iterable[float | None]) -> float | None:
    """The median of the recorded values; None when none was recorded."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def speed_rows(study: Study) -> list[SpeedRow]:
    """Per model: medians over its answers of tokens, tokens/s and characters/s, and how
    much its answers repeat themselves (:func:`adaptation.repetition.mean_distinct_share`).

    Each median is over the answers that recorded the quantity (an imported answer may
    carry no token count or time); a model none of whose answers did gets None, never 0."""
    out = []
    for model in study.systems():
        answers = list(
            Answer.objects.filter(run__study=study, run__model=model).only(
                "text", "new_tokens", "seconds", "stop_reason"
            )
        )
        if not answers:
            continue
        run = GenerationRun.objects.filter(study=study, model=model).first()
        reference = (run.reference_speed if run else None) or {}
        stops = [a.stop_reason for a in answers if a.stop_reason != Answer.StopReason.UNKNOWN]
        out.append(
            SpeedRow(
                model=model.name,
                answers=len(answers),
                median_new_tokens=_median(a.new_tokens for a in answers),
                median_tokens_per_second=_median(a.tokens_per_second for a in answers),
                median_chars_per_second=_median(a.chars_per_second for a in answers),
                median_chars=statistics.median(len(a.text) for a in answers),
                eos_share=sum(s == "eos" for s in stops) / len(stops) if stops else None,
                distinct_3gram_share=mean_distinct_share(a.text for a in answers),
                reference_chars=reference.get("chars"),
                reference_tokens=reference.get("tokens"),
                reference_forced_s_per_1000_chars=reference.get("forced_s_per_1000_chars"),
                reference_single_pass_s_per_1000_chars=reference.get(
                    "single_pass_s_per_1000_chars"
                ),
            )
        )
    return out


def speed_dicts(study: Study) -> list[dict[str, Any]]:
    """:func:`speed_rows` as plain dicts (the form the report and the cache store)."""
    return [asdict(r) for r in speed_rows(study)]


def vote_export_rows(study: Study) -> list[dict[str, Any]]:
    """One dict per vote with everything an export shows: ids, texts, sides, timing."""
    rows = (
        study_votes(study)
        .annotate(excluded=_excluded(study, "assignment__pair"))
        .values(
            "pk",
            "assignment__pair__question_id",
            "assignment__pair__question__external_id",
            "assignment__pair__question__category",
            "assignment__pair__question__text",
            "assignment__annotator__username",
            "assignment__left_model__name",
            "assignment__pair__model_x__name",
            "assignment__pair__model_y__name",
            "assignment__repeat_of",
            "choice",
            "seconds_on_page",
            "comment",
            "excluded",
            "created_at",
            "updated_at",
        )
    )
    out = []
    for r in rows:
        left = r["assignment__left_model__name"]
        x, y = r["assignment__pair__model_x__name"], r["assignment__pair__model_y__name"]
        out.append(
            {
                "vote_id": r["pk"],
                "question_pk": r["assignment__pair__question_id"],
                "question": r["assignment__pair__question__external_id"],
                "category": r["assignment__pair__question__category"],
                "prompt": r["assignment__pair__question__text"],
                "annotator": r["assignment__annotator__username"],
                "left": left,
                "right": y if left == x else x,
                "choice": r["choice"],
                "seconds": r["seconds_on_page"],
                "comment": r["comment"],
                "created_at": r["created_at"],
                "updated_at": r["updated_at"],
                "repeat": r["assignment__repeat_of"] is not None,
                "excluded": r["excluded"],
            }
        )
    return out


def answer_texts(study: Study) -> dict[tuple[int, str], str]:
    """(question pk, model name) -> answer text, for every answer of the study."""
    rows = Answer.objects.filter(run__study=study).values_list(
        "question_id", "run__model__name", "text"
    )
    return {(q, m): t for q, m, t in rows}


def answers_sha256(study: Study) -> str:
    """sha256 over the study's answers: UTF-8 JSON lines ``[question id, model, text]``, sorted."""
    rows = sorted(
        Answer.objects.filter(run__study=study).values_list(
            "question__external_id", "run__model__name", "text"
        )
    )
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(list(row), ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
