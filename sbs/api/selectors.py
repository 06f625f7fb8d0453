"""Reads behind the HTTP API: the rows the pages read, shaped as the API's bodies."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, QuerySet

from sbs.analysis import exports
from sbs.analysis import selectors as analysis_selectors
from sbs.api.models import ApiToken
from sbs.catalog.models import AdaptationJob, ModelEntry, ModelImportJob
from sbs.questions.models import QuestionSet
from sbs.studies import selectors as study_selectors
from sbs.studies.models import Answer, GenerationRun, Pair, Study


def tokens_of(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def ref(obj: Any) -> dict[str, Any] | None:
    return None if obj is None else {"id": obj.pk, "name": obj.name}


def question_set_out(qset: QuestionSet, n: int | None = None) -> dict[str, Any]:
    return {
        "id": qset.pk,
        "name": qset.name,
        "language": qset.language,
        "sha256": qset.sha256,
        "questions": n if n is not None else qset.questions.count(),
        "created_at": qset.created_at,
    }


def model_out(entry: ModelEntry) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "name": entry.name,
        "kind": entry.kind,
        "architecture": entry.architecture,
        "tokenizer_class": entry.tokenizer_class,
        "total_bytes": entry.total_bytes,
        "sha256": entry.sha256,
        "parent": ref(entry.parent),
        "created_at": entry.created_at,
    }


def _result(job: ModelImportJob | AdaptationJob) -> dict[str, Any] | None:
    entry = job.result
    return ref(entry) if entry is not None and entry.ready else None


def model_import_out(job: ModelImportJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "name": job.name,
        "status": job.status,
        "error": job.error_text,
        "model": _result(job),
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


def adaptation_out(job: AdaptationJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "parent": ref(job.parent),
        "name": job.name,
        "status": job.status,
        "step": job.step,
        "message": job.message,
        "progress": job.progress,
        "error": job.error,
        "model": _result(job),
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


def study_out(study: Study) -> dict[str, Any]:
    return {
        "id": study.pk,
        "name": study.name,
        "status": study.status,
        "question_set": ref(study.question_set),
        "model_a": ref(study.model_a),
        "model_b": ref(study.model_b),
        "systems": [ref(m) for m in study.systems()],
        "generation": study.generation,
        "seed": study.seed,
        "judgments_per_pair": study.judgments_per_pair,
        "repeat_share": study.repeat_share,
        "pair_budget": study.pair_budget,
        "created_at": study.created_at,
    }


def run_out(run: GenerationRun) -> dict[str, Any]:
    return {
        "model": ref(run.model),
        "status": run.status,
        "done": run.done_count,
        "total": run.total_count,
        "attempts": run.attempts,
        "device": run.device,
        "error": run.error,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


def annotator_out(row: study_selectors.AnnotatorRow) -> dict[str, Any]:
    return {
        "id": row.user.pk,
        "username": row.user.username,
        "done": row.done,
        "total": row.total,
        "voted": row.voted,
        "last_activity": row.last_activity,
        "invite": row.invite.state,
        "invite_expires_at": row.invite.expires_at,
    }


def study_detail_out(study: Study) -> dict[str, Any]:
    """The study page's facts: settings, generation runs, annotators and their progress,
    the pairs by state and the answers awaiting review."""
    rows = study_selectors.annotator_rows(study)
    pairs = dict(
        Pair.objects.filter(study=study)
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    flagged = Answer.objects.filter(
        run__study=study, self_identifies=True, reviewed=False, excluded=False
    ).count()
    return {
        **study_out(study),
        "runs": [run_out(r) for r in study_selectors.runs_of(study)],
        "progress": {
            "votes": sum(r.done for r in rows),
            "judgments": sum(r.total for r in rows),
            "annotators": len(rows),
            "pairs_shown": pairs.get(Pair.Status.SHOWN, 0),
            "pairs_held": pairs.get(Pair.Status.HELD, 0),
            "pairs_withdrawn": pairs.get(Pair.Status.WITHDRAWN, 0),
            "flagged_unreviewed": flagged,
        },
        "annotators": [annotator_out(r) for r in rows],
    }


def vote_rows(study: Study) -> list[dict[str, Any]]:
    """The study's votes with the models resolved, the rows of the CSV export
    (:func:`sbs.analysis.selectors.vote_export_rows`), as JSON values."""
    out = []
    for r in analysis_selectors.vote_export_rows(study):
        seconds = r["seconds"]
        out.append(
            {
                "vote_id": r["vote_id"],
                "question": r["question"],
                "category": r["category"],
                "annotator": r["annotator"],
                "left_model": r["left"],
                "right_model": r["right"],
                "choice": r["choice"],
                "winner_model": exports.winner_model(r["left"], r["right"], r["choice"]),
                "seconds": None if seconds is None else round(float(seconds), 3),
                "comment": r["comment"],
                "created_at": r["created_at"],
                "updated_at": r["updated_at"],
                "repeat": r["repeat"],
                "excluded": r["excluded"],
            }
        )
    return out


def report_body(report: dict[str, Any]) -> dict[str, Any]:
    """A report as the JSON export holds it: its facts and every section, in order, with
    NaN and infinity as null (:func:`sbs.analysis.exports.report_json`)."""
    body: dict[str, Any] = json.loads(exports.report_json(report, {}))["report"]
    return body


def export_format_out(spec: exports.ExportFormat, study_id: int) -> dict[str, Any]:
    return {
        "key": spec.key,
        "label": str(spec.label),
        "content_type": spec.content_type,
        "filename": spec.download_name(study_id),
    }
