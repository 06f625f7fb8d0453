"""A whole study as JSON, and back: question set, model metadata, runs with their answers
and timings, pairs (a question and two systems, by name), assignments (their pair by index,
left model by name), votes with their revisions, annotators.

No database ids appear in the export: rows refer to each other by natural keys (question
``external_id``, model name, annotator user name; an assignment's repeat by its index in
the list). Timestamps are exported and restored, so export -> import -> export is identical.
Model files are not exported: the models must already be registered where the study is
imported, matched by name and sha256.

Version 2 holds studies of N systems; version 1 files (two models, a pair per question) are
still read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import models, transaction
from django.utils.dateparse import parse_datetime

from sbs.accounts.roles import is_researcher
from sbs.catalog.models import ModelEntry
from sbs.questions.models import Question, QuestionSet
from sbs.studies.models import (
    Answer,
    Assignment,
    GenerationRun,
    Pair,
    Study,
    StudySystem,
    with_systems,
)
from sbs.voting.models import Vote, VoteRevision

FORMAT = "sbs-study"
VERSION = 2
READABLE_VERSIONS = (1, 2)
_BATCH = 1000
#: An export nests about 8 levels (a model's recipe the deepest); anything far deeper is not
#: one, and would overflow the stack of the JSON encoder when saved into a JSONField.
MAX_DEPTH = 64

_QUESTION_FIELDS = ("external_id", "text", "category", "reference", "position")
_MODEL_FIELDS = ("name", "kind", "path", "architecture", "tokenizer_class", "total_bytes", "sha256", "recipe")  # fmt: skip
_RUN_FIELDS = ("status", "device", "worker", "attempts", "done_count", "total_count", "load_seconds", "error")  # fmt: skip
_RUN_TIMES = ("created_at", "started_at", "finished_at")
_ANSWER_FIELDS = ("text", "prompt_tokens", "new_tokens", "seconds", "tokenize_seconds", "batch_size", "stop_reason", "self_identifies", "excluded")  # fmt: skip
_VOTE_FIELDS = ("choice", "comment", "seconds_on_page")


class TransferError(ValueError):
    """An export that cannot be imported here, with a message for the person importing."""


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise TransferError(f"not a timestamp: {value!r}")
    return parsed


def _required_time(value: str | None) -> datetime:
    parsed = _parse_time(value)
    if parsed is None:
        raise TransferError("a required timestamp is missing")
    return parsed


def _model_dict(entry: ModelEntry) -> dict[str, Any]:
    data = {f: getattr(entry, f) for f in _MODEL_FIELDS}
    data["parent"] = entry.parent.name if entry.parent is not None else None
    return data


# --- export ------------------------------------------------------------------------------


def study_export(study: Study) -> dict[str, Any]:
    """Everything a study holds, as JSON-ready plain data (no ids, no model files)."""
    study = (
        with_systems()
        .select_related("owner", "question_set", "model_a__parent", "model_b__parent")
        .get(pk=study.pk)
    )
    qset = study.question_set
    questions = list(qset.questions.order_by("position"))
    external = {q.pk: q.external_id for q in questions}
    systems = study.systems()
    names = {m.pk: m.name for m in systems}

    runs = []
    for run in study.runs.select_related("model").order_by("model__name", "pk"):
        answers = run.answers.order_by("question__position", "pk")
        runs.append(
            {
                "model": run.model.name,
                **{f: getattr(run, f) for f in _RUN_FIELDS},
                **{f: _time(getattr(run, f)) for f in _RUN_TIMES},
                "answers": [
                    {
                        "question": external[a.question_id],
                        **{f: getattr(a, f) for f in _ANSWER_FIELDS},
                        "created_at": _time(a.created_at),
                    }
                    for a in answers
                ],
            }
        )

    pairs = list(study.pairs.order_by("question__position", "pk"))
    pair_index = {p.pk: i for i, p in enumerate(pairs)}
    assignments = list(
        Assignment.objects.filter(pair__study=study)
        .select_related("annotator", "pair")
        .order_by("annotator__username", "order", "pk")
    )
    index = {a.pk: i for i, a in enumerate(assignments)}
    votes = {
        v.assignment_id: v
        for v in Vote.objects.filter(assignment__pair__study=study).prefetch_related("revisions")
    }
    assignment_rows = []
    for a in assignments:
        vote = votes.get(a.pk)
        assignment_rows.append(
            {
                "pair": pair_index[a.pair_id],
                "annotator": a.annotator.get_username(),
                "left_model": names[a.left_model_id],
                "order": a.order,
                "repeat_of": index[a.repeat_of_id] if a.repeat_of_id else None,
                "vote": None if vote is None else _vote_dict(vote),
            }
        )

    return {
        "format": FORMAT,
        "version": VERSION,
        "study": {
            "name": study.name,
            "owner": study.owner.get_username(),
            "status": study.status,
            "seed": study.seed,
            "generation": study.generation,
            "judgments_per_pair": study.judgments_per_pair,
            "repeat_share": study.repeat_share,
            "pair_budget": study.pair_budget,
            "created_at": _time(study.created_at),
        },
        "question_set": {
            "name": qset.name,
            "language": qset.language,
            "sha256": qset.sha256,
            "created_at": _time(qset.created_at),
            "questions": [{f: getattr(q, f) for f in _QUESTION_FIELDS} for q in questions],
        },
        "models": {
            "a": _model_dict(study.model_a),
            "b": _model_dict(study.model_b),
            "more": [_model_dict(m) for m in systems[2:]],
        },
        "annotators": sorted(u.get_username() for u in study.annotators.all()),
        "runs": runs,
        "pairs": [
            {
                "question": external[p.question_id],
                "x": names[p.model_x_id],
                "y": names[p.model_y_id],
            }
            for p in pairs
        ],
        "assignments": assignment_rows,
    }


def _vote_dict(vote: Vote) -> dict[str, Any]:
    revisions = sorted(vote.revisions.all(), key=lambda r: (r.replaced_at, r.pk))
    return {
        **{f: getattr(vote, f) for f in _VOTE_FIELDS},
        "created_at": _time(vote.created_at),
        "updated_at": _time(vote.updated_at),
        "revisions": [
            {**{f: getattr(r, f) for f in _VOTE_FIELDS}, "replaced_at": _time(r.replaced_at)}
            for r in revisions
        ],
    }


# --- import ------------------------------------------------------------------------------


def export_parse(raw: bytes | str) -> dict[str, Any]:
    """The JSON of an export file, or a :class:`TransferError` saying why it is not one
    (invalid JSON, or nested deeper than :data:`MAX_DEPTH`: never a RecursionError)."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise TransferError(
            f"not a study export: the JSON is nested more than {MAX_DEPTH} levels deep"
        ) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise TransferError(f"not valid JSON: {exc}") from None
    _check_depth(data)
    if not isinstance(data, dict):
        raise TransferError("this is not an sbs study export")
    return data


def _check_depth(data: Any) -> None:
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise TransferError(
                f"not a study export: the JSON is nested more than {MAX_DEPTH} levels deep"
            )
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def study_import(
    data: dict[str, Any], *, owner: User, question_set_name: str | None = None
) -> Study:
    """Recreate an exported study, owned by ``owner``, in one transaction.

    The two models must already be registered (same name and sha256). The question set is
    reused when one of that name holds exactly the same questions, created when absent, and
    refused when a different set has the name (pass ``question_set_name`` to rename it).
    Annotators missing here are created with unusable passwords (an invite or a password
    reset lets them in). Timestamps are restored as exported.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TransferError("this is not an sbs study export")
    _check_depth(data)
    if data.get("version") not in READABLE_VERSIONS:
        raise TransferError(
            f"export version {data.get('version')!r} is not supported (expected {VERSION})"
        )
    if not is_researcher(owner):
        raise TransferError(f"{owner.get_username()!r} is not a researcher")
    try:
        with transaction.atomic():
            return _import(data, owner=owner, question_set_name=question_set_name)
    except (KeyError, TypeError, IndexError) as exc:
        raise TransferError(f"malformed export: {type(exc).__name__}: {exc}") from exc


def _restore(model: type[models.Model], objs: list[Any], fields: Iterable[str]) -> None:
    """Put exported timestamps back: ``auto_now``/``auto_now_add`` overwrote them on create,
    and ``bulk_update`` writes given values without calling ``pre_save``."""
    if objs:
        model._default_manager.bulk_update(objs, list(fields), batch_size=_BATCH)


def _import(data: dict[str, Any], *, owner: User, question_set_name: str | None) -> Study:
    meta = data["study"]
    running = [
        r["model"]
        for r in data["runs"]
        if r["status"] in (GenerationRun.Status.PENDING, GenerationRun.Status.RUNNING)
    ]
    if running:
        raise TransferError(
            "the study was exported while generating answers (runs of "
            + ", ".join(running)
            + " unfinished); export it again once they are done or failed"
        )

    entries = [_match_model(data["models"][key]) for key in ("a", "b")]
    entries += [_match_model(meta) for meta in data["models"].get("more", [])]
    by_name = {entry.name: entry for entry in entries}
    qset = _question_set(data["question_set"], question_set_name)
    questions = {q.external_id: q for q in qset.questions.all()}
    users = _users(data["annotators"])

    study = Study.objects.create(
        name=meta["name"],
        owner=owner,
        question_set=qset,
        model_a=entries[0],
        model_b=entries[1],
        generation=meta["generation"],
        seed=meta["seed"],
        status=meta["status"],
        judgments_per_pair=meta["judgments_per_pair"],
        repeat_share=meta["repeat_share"],
        pair_budget=meta.get("pair_budget"),
    )
    StudySystem.objects.bulk_create(
        StudySystem(study=study, model=model, position=position)
        for position, model in enumerate(entries[2:], start=2)
    )
    study.created_at = _required_time(meta["created_at"])
    _restore(Study, [study], ["created_at"])
    study.annotators.add(*users.values())

    for run_data in data["runs"]:
        run = GenerationRun(study=study, model=by_name[run_data["model"]])
        for f in _RUN_FIELDS:
            setattr(run, f, run_data[f])
        run.save()
        for f in _RUN_TIMES:
            when = run_data[f]
            setattr(run, f, _required_time(when) if f == "created_at" else _parse_time(when))
        _restore(GenerationRun, [run], _RUN_TIMES)
        answers = [
            Answer(
                run=run,
                question=questions[a["question"]],
                **{f: a[f] for f in _ANSWER_FIELDS},
            )
            for a in run_data["answers"]
        ]
        Answer.objects.bulk_create(answers, batch_size=_BATCH)
        for answer, a in zip(answers, run_data["answers"], strict=True):
            answer.created_at = _required_time(a["created_at"])
        _restore(Answer, answers, ["created_at"])

    rows = _pair_rows(data)
    pairs = Pair.objects.bulk_create(
        [
            Pair(study=study, question=questions[q], model_x=by_name[x], model_y=by_name[y])
            for q, x, y in rows
        ],
        batch_size=_BATCH,
    )
    if data["version"] == 1:  # an assignment named its question: one pair per question then
        index = {q: i for i, (q, _x, _y) in enumerate(rows)}
        for r in data["assignments"]:
            r["pair"] = index[r["question"]]
    assignments = _assignments(data["assignments"], pairs, users, by_name)
    _votes(data["assignments"], assignments)
    return study


def _pair_rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(question, system x, system y) of each exported pair; version 1 compared A and B."""
    if data["version"] == 1:
        a, b = data["models"]["a"]["name"], data["models"]["b"]["name"]
        return [(q, a, b) for q in data["pairs"]]
    return [(p["question"], p["x"], p["y"]) for p in data["pairs"]]


def _match_model(meta: dict[str, Any]) -> ModelEntry:
    entry = ModelEntry.objects.ready().filter(name=meta["name"], sha256=meta["sha256"]).first()
    if entry is None:
        same_name = ModelEntry.objects.filter(name=meta["name"]).first()
        detail = (
            f"a model of that name is registered with sha256 {same_name.sha256[:12]}…"
            if same_name
            else "no model of that name is registered"
        )
        raise TransferError(
            f"model {meta['name']!r} (sha256 {meta['sha256'][:12]}…) is not registered here: "
            f"{detail}. Register the same files under that name first."
        )
    return entry


def _question_set(meta: dict[str, Any], rename: str | None) -> QuestionSet:
    name = (rename or meta["name"]).strip()
    wanted = [{f: q[f] for f in _QUESTION_FIELDS} for q in meta["questions"]]
    existing = QuestionSet.objects.filter(name=name).first()
    if existing is not None:
        have = [
            {f: getattr(q, f) for f in _QUESTION_FIELDS}
            for q in existing.questions.order_by("position")
        ]
        if have == wanted:
            return existing
        raise TransferError(
            f"a different question set named {name!r} already exists here; "
            "import under another name for the set"
        )
    qset = QuestionSet.objects.create(name=name, language=meta["language"], sha256=meta["sha256"])
    qset.created_at = _required_time(meta["created_at"])
    _restore(QuestionSet, [qset], ["created_at"])
    Question.objects.bulk_create(
        [Question(question_set=qset, **q) for q in wanted], batch_size=_BATCH
    )
    return qset


def _users(usernames: list[str]) -> dict[str, Any]:
    user_model = get_user_model()
    field = user_model.USERNAME_FIELD
    found = {u.get_username(): u for u in user_model.objects.filter(**{f"{field}__in": usernames})}
    for name in usernames:
        if name not in found:
            user = user_model(**{field: name})
            user.set_unusable_password()
            user.save()
            found[name] = user
    return found


def _assignments(
    rows: list[dict[str, Any]],
    pairs: list[Pair],
    users: dict[str, Any],
    models_by_name: dict[str, ModelEntry],
) -> list[Assignment]:
    """Create the assignments, originals before the repeats that point at them."""
    built = [
        Assignment(
            pair=pairs[r["pair"]],
            annotator=users[r["annotator"]],
            left_model=models_by_name[r["left_model"]],
            order=r["order"],
        )
        for r in rows
    ]
    for i, r in enumerate(rows):
        if r["repeat_of"] is not None and not 0 <= r["repeat_of"] < len(rows):
            raise TransferError(
                f"assignment {i} repeats assignment {r['repeat_of']!r}, not in the list"
            )
    pending = list(range(len(rows)))
    while pending:
        ready = [
            i
            for i in pending
            if rows[i]["repeat_of"] is None or built[rows[i]["repeat_of"]].pk is not None
        ]
        if not ready:
            raise TransferError("assignments repeat each other in a cycle")
        for i in ready:
            if rows[i]["repeat_of"] is not None:
                built[i].repeat_of = built[rows[i]["repeat_of"]]
        Assignment.objects.bulk_create([built[i] for i in ready], batch_size=_BATCH)
        done = set(ready)
        pending = [i for i in pending if i not in done]
    return built


def _votes(rows: list[dict[str, Any]], assignments: list[Assignment]) -> None:
    voted = [(a, r["vote"]) for a, r in zip(assignments, rows, strict=True) if r["vote"]]
    votes = Vote.objects.bulk_create(
        [Vote(assignment=a, **{f: v[f] for f in _VOTE_FIELDS}) for a, v in voted],
        batch_size=_BATCH,
    )
    revisions: list[VoteRevision] = []
    replaced: list[datetime] = []
    for vote, (_, v) in zip(votes, voted, strict=True):
        vote.created_at = _required_time(v["created_at"])
        vote.updated_at = _required_time(v["updated_at"])
        for r in v["revisions"]:
            revisions.append(VoteRevision(vote=vote, **{f: r[f] for f in _VOTE_FIELDS}))
            replaced.append(_required_time(r["replaced_at"]))
    _restore(Vote, votes, ["created_at", "updated_at"])
    VoteRevision.objects.bulk_create(revisions, batch_size=_BATCH)
    for revision, when in zip(revisions, replaced, strict=True):
        revision.replaced_at = when
    _restore(VoteRevision, revisions, ["replaced_at"])
