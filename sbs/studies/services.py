"""Writes for question sets, models, studies and generation runs."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from adaptation.generate import GenerationSettings
from sbs.accounts.models import Invite, token_digest
from sbs.studies import importers, modelfiles
from sbs.studies.blinding import plan_key
from sbs.studies.design import plan_assignments
from sbs.studies.models import (
    AdaptationJob,
    Answer,
    Assignment,
    GenerationRun,
    ModelEntry,
    Pair,
    Question,
    QuestionSet,
    Study,
)

User = get_user_model()


class ServiceError(ValueError):
    """A refusal with a message meant for the person who asked."""


# --- question sets -----------------------------------------------------------------------


@transaction.atomic
def question_set_import(
    *, name: str, data: bytes, filename: str, user: Any = None, language: str = "ru"
) -> QuestionSet:
    """Validate the whole file, then write the set and its questions in one transaction."""
    name = name.strip()
    if not name:
        raise ServiceError(_("The question set needs a name."))
    parsed = importers.parse_questions(data, importers.detect_format(filename))
    if QuestionSet.objects.filter(name=name).exists():
        raise ServiceError(_("A question set named “%(name)s” already exists.") % {"name": name})
    qset = QuestionSet.objects.create(
        name=name, language=language, sha256=importers.content_sha256(parsed), created_by=user
    )
    Question.objects.bulk_create(
        Question(
            question_set=qset,
            external_id=q.external_id,
            text=q.text,
            category=q.category,
            reference=q.reference,
            position=i,
        )
        for i, q in enumerate(parsed)
    )
    return qset


# --- models ------------------------------------------------------------------------------


def model_register(
    *,
    name: str,
    source: Path,
    user: Any = None,
    parent: ModelEntry | None = None,
    recipe: dict[str, Any] | None = None,
) -> ModelEntry:
    """Check the files (no pickles, no code), copy them into MODEL_STORE, add the entry."""
    name = name.strip()
    if not name:
        raise ServiceError(_("The model needs a name."))
    if ModelEntry.objects.filter(name=name).exists():
        raise ServiceError(_("A model named “%(name)s” already exists.") % {"name": name})
    store = Path(settings.MODEL_STORE)
    store.mkdir(parents=True, exist_ok=True)
    slug = f"{slugify(name) or 'model'}-{secrets.token_hex(4)}"
    inspection = modelfiles.install_model(
        Path(source), store, slug, max_total_bytes=settings.MODEL_ARCHIVE_MAX_BYTES
    )
    relative = inspection.root.relative_to(store)
    try:
        return ModelEntry.objects.create(
            name=name,
            kind=inspection.kind,
            path=str(relative),
            architecture=inspection.architecture or "",
            tokenizer_class=inspection.tokenizer_class or "",
            total_bytes=inspection.total_bytes,
            sha256=inspection.sha256,
            parent=parent,
            recipe=recipe or {},
            created_by=user,
        )
    except IntegrityError as exc:
        raise ServiceError(_("A model named “%(name)s” already exists.") % {"name": name}) from exc


def model_path(entry: ModelEntry) -> Path:
    path = Path(entry.path)
    return path if path.is_absolute() else Path(settings.MODEL_STORE) / path


# --- studies -----------------------------------------------------------------------------


def study_create(
    *,
    owner: Any,
    name: str,
    question_set: QuestionSet,
    model_a: ModelEntry,
    model_b: ModelEntry,
    generation: dict[str, Any] | None = None,
    seed: int = 0,
    judgments_per_pair: int | None = None,
    repeat_share: float = 0.0,
) -> Study:
    if model_a.pk == model_b.pk:
        raise ServiceError(_("A study compares two different models."))
    if not 0 <= repeat_share <= 0.5:
        raise ServiceError(_("The share of repeated pairs must be between 0 and 0.5."))
    settings_ = GenerationSettings.from_dict({"seed": seed, **(generation or {})})
    return Study.objects.create(
        owner=owner,
        name=name.strip() or "study",
        question_set=question_set,
        model_a=model_a,
        model_b=model_b,
        generation=settings_.to_dict(),
        seed=seed,
        judgments_per_pair=judgments_per_pair,
        repeat_share=repeat_share,
    )


def study_add_annotators(*, study: Study, users: Iterable[Any]) -> int:
    """Add annotators; once the study is open their assignments are planned at once."""
    users = [u for u in users if not study.annotators.filter(pk=u.pk).exists()]
    if not users:
        return 0
    with transaction.atomic():
        study.annotators.add(*users)
        if study.status == Study.Status.OPEN:
            _assignments_create(study, [u.pk for u in users])
    return len(users)


_NAME_RE = re.compile(r"[^\w.@+-]+")


def annotators_create_bulk(
    *, study: Study, names: Iterable[str], created_by: Any
) -> list[tuple[Any, str]]:
    """Create accounts from a list of names; return each user with a one-time invite token."""
    created: list[tuple[Any, str]] = []
    with transaction.atomic():
        for raw in names:
            base = _NAME_RE.sub("_", raw.strip()).strip("_")[:120]
            if not base:
                continue
            username, n = base, 1
            while User.objects.filter(username=username).exists():
                n += 1
                username = f"{base}_{n}"
            user = User.objects.create_user(username=username, first_name=raw.strip()[:150])
            user.set_unusable_password()
            user.save(update_fields=["password"])
            token = secrets.token_urlsafe(32)
            Invite.objects.create(
                user=user, token_sha256=token_digest(token), created_by=created_by
            )
            created.append((user, token))
        study_add_annotators(study=study, users=[u for u, _ in created])
    return created


def study_start(*, study: Study) -> list[GenerationRun]:
    """draft -> generating: one run per model, enqueued on the GPU queue after commit."""
    from workers.tasks import enqueue_generation

    with transaction.atomic():
        won = Study.objects.filter(pk=study.pk, status=Study.Status.DRAFT).update(
            status=Study.Status.GENERATING
        )
        if not won:
            raise ServiceError(_("The study has already been started."))
        total = study.question_set.questions.count()
        runs = [
            GenerationRun.objects.create(study=study, model=model, total_count=total)
            for model in (study.model_a, study.model_b)
        ]
        for run in runs:
            enqueue_generation(run.pk)
    study.status = Study.Status.GENERATING
    return runs


def run_retry(*, run: GenerationRun) -> bool:
    """A failed run goes back to pending and is enqueued again; its answers are kept."""
    from workers.tasks import enqueue_generation

    with transaction.atomic():
        won = GenerationRun.objects.filter(pk=run.pk, status=GenerationRun.Status.FAILED).update(
            status=GenerationRun.Status.PENDING, attempts=0, error=""
        )
        if won:
            enqueue_generation(run.pk)
    return bool(won)


def run_requeue(*, run: GenerationRun) -> None:
    """Send an unfinished run again with fresh attempts (the demo's resume after a stop).

    Only for a single-machine setup where no other worker may hold the run: the stored
    answers are kept and skipped, so nothing is generated twice.
    """
    from workers.tasks import enqueue_generation

    with transaction.atomic():
        GenerationRun.objects.filter(pk=run.pk).exclude(status=GenerationRun.Status.DONE).update(
            status=GenerationRun.Status.PENDING, attempts=0, error=""
        )
        enqueue_generation(run.pk)


def adaptation_requeue(*, job: AdaptationJob) -> None:
    """Send an unfinished adaptation job again; its pipeline resumes from the last step."""
    from workers.tasks import enqueue_adaptation

    with transaction.atomic():
        AdaptationJob.objects.filter(pk=job.pk).exclude(status=AdaptationJob.Status.DONE).update(
            status=AdaptationJob.Status.PENDING, attempts=0, error=""
        )
        enqueue_adaptation(job.pk)


def study_open_if_ready(*, study_id: int) -> bool:
    """generating -> open once every run is done: pairs and assignments are created once."""
    with transaction.atomic():
        runs = GenerationRun.objects.filter(study_id=study_id)
        if not runs.exists() or runs.exclude(status=GenerationRun.Status.DONE).exists():
            return False
        won = Study.objects.filter(pk=study_id, status=Study.Status.GENERATING).update(
            status=Study.Status.OPEN
        )
        if not won:
            return False
        study = Study.objects.get(pk=study_id)
        Pair.objects.bulk_create(
            Pair(study=study, question=q) for q in study.question_set.questions.all()
        )
        _assignments_create(study, list(study.annotators.values_list("pk", flat=True)))
    return True


def _assignments_create(study: Study, annotator_ids: list[int]) -> None:
    pair_ids = list(study.pairs.values_list("pk", flat=True))
    plan = plan_assignments(
        pair_ids,
        annotator_ids,
        judgments_per_pair=study.judgments_per_pair,
        repeat_share=study.repeat_share,
        key=plan_key(study_id=study.pk, salt=study.plan_salt, batch=min(annotator_ids, default=0)),
    )
    first: dict[tuple[int, int], Assignment] = {}
    repeats = []
    for item in plan:
        left = study.model_a if item.a_on_left else study.model_b
        assignment = Assignment(
            pair_id=item.pair_id, annotator_id=item.annotator_id, left_model=left, order=item.order
        )
        if item.repeat_of_pair:
            repeats.append((item, assignment))
        else:
            first[(item.pair_id, item.annotator_id)] = assignment
    Assignment.objects.bulk_create(first.values())
    if repeats:
        saved = {
            (a.pair_id, a.annotator_id): a
            for a in Assignment.objects.filter(pair__study=study, repeat_of__isnull=True)
        }
        for item, assignment in repeats:
            assignment.repeat_of = saved[(item.pair_id, item.annotator_id)]
        Assignment.objects.bulk_create(a for _, a in repeats)


def study_close(*, study: Study) -> bool:
    return bool(
        Study.objects.filter(pk=study.pk, status=Study.Status.OPEN).update(
            status=Study.Status.CLOSED
        )
    )


def study_reopen(*, study: Study) -> bool:
    return bool(
        Study.objects.filter(pk=study.pk, status=Study.Status.CLOSED).update(
            status=Study.Status.OPEN
        )
    )


# --- runs (called by the worker) -------------------------------------------------------


def _claim(model: type[GenerationRun] | type[AdaptationJob], pk: int, max_attempts: int,
           **fields: Any) -> bool:  # fmt: skip
    """Claim a pending job row, or one left running by a worker that died (a redelivery).

    The conditional update is the lock: two deliveries of the same task can both win only
    after a crash, and what they write is keyed so that the second changes nothing twice.
    A row whose attempts are used up while still running (the worker keeps dying on it)
    ends as failed with the reason on the row.
    """
    Status = GenerationRun.Status  # both job models share these status values
    claimed = model.objects.filter(
        pk=pk, status__in=[Status.PENDING, Status.RUNNING], attempts__lt=max_attempts
    ).update(
        status=Status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=timezone.now(),
        error="",
        **fields,
    )
    if claimed:
        return True
    model.objects.filter(pk=pk, status=Status.RUNNING, attempts__gte=max_attempts).update(
        status=Status.FAILED,
        finished_at=timezone.now(),
        error=f"gave up after {max_attempts} attempts (the worker stopped mid-job each time)",
    )
    return False


def run_claim(*, run_id: int, worker: str, device: str, max_attempts: int) -> bool:
    """Claim a generation run; its answers are upserts on (run, question)."""
    return _claim(GenerationRun, run_id, max_attempts, worker=worker[:200], device=device[:64])


def run_fail(*, run_id: int, error: str, final: bool) -> None:
    status = GenerationRun.Status.FAILED if final else GenerationRun.Status.PENDING
    GenerationRun.objects.filter(pk=run_id, status=GenerationRun.Status.RUNNING).update(
        status=status, error=error[:10_000], finished_at=timezone.now() if final else None
    )


def run_finish(*, run_id: int) -> bool:
    won = GenerationRun.objects.filter(pk=run_id, status=GenerationRun.Status.RUNNING).update(
        status=GenerationRun.Status.DONE, finished_at=timezone.now()
    )
    if won:
        run = GenerationRun.objects.get(pk=run_id)
        study_open_if_ready(study_id=run.study_id)
    return bool(won)


# --- adaptation jobs ---------------------------------------------------------------------


def adaptation_start(
    *, parent: ModelEntry, name: str, config: dict[str, Any], user: Any = None
) -> AdaptationJob:
    """Create the job row and send it to the GPU queue once the transaction commits."""
    from adaptation.pipeline import PipelineConfig
    from workers.tasks import enqueue_adaptation

    name = name.strip()
    if not name:
        raise ServiceError(_("The adapted model needs a name."))
    if (
        ModelEntry.objects.filter(name=name).exists()
        or AdaptationJob.objects.filter(
            name=name, status__in=[AdaptationJob.Status.PENDING, AdaptationJob.Status.RUNNING]
        ).exists()
    ):
        raise ServiceError(
            _("A model named “%(name)s” already exists or is being made.") % {"name": name}
        )
    checked = PipelineConfig.from_dict(config).to_dict()  # refuses bad values before queueing
    with transaction.atomic():
        job = AdaptationJob.objects.create(
            parent=parent, name=name, config=checked, created_by=user
        )
        enqueue_adaptation(job.pk)
    return job


def adaptation_claim(*, job_id: int, device: str, max_attempts: int) -> bool:
    """Claim an adaptation job; its pipeline skips the steps already done."""
    return _claim(AdaptationJob, job_id, max_attempts, device=device[:64])


def adaptation_finish(
    *, job: AdaptationJob, model_dir: Path, summary: dict[str, Any]
) -> ModelEntry:
    """Register the adapted model as a child of its parent, with the recipe, exactly once."""
    existing = ModelEntry.objects.filter(name=job.name, parent=job.parent).first()
    entry = existing or model_register(
        name=job.name,
        source=model_dir,
        user=job.created_by,
        parent=job.parent,
        recipe={"method": "russian_vocabulary_adaptation", "config": job.config, "steps": summary},
    )
    AdaptationJob.objects.filter(pk=job.pk).update(
        status=AdaptationJob.Status.DONE,
        result=entry,
        summary=summary,
        step="done",
        progress=1.0,
        finished_at=timezone.now(),
    )
    return entry


def adaptation_fail(*, job_id: int, error: str) -> None:
    AdaptationJob.objects.filter(pk=job_id).update(
        status=AdaptationJob.Status.FAILED, error=error[:10_000], finished_at=timezone.now()
    )


def answer_set_excluded(*, study: Study, answer_id: int, excluded: bool) -> bool:
    """Exclude an answer (e.g. one that names its model) from the analysis, or take it back.

    The analysis then leaves out every vote on that question of this study.
    """
    return bool(Answer.objects.filter(pk=answer_id, run__study=study).update(excluded=excluded))
