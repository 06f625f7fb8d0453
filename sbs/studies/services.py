"""Writes for studies, generation runs, answers, pairs and assignments."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from adaptation.generate import GenerationSettings
from sbs.accounts.models import Invite
from sbs.accounts.services import invite_issue
from sbs.catalog.answer_files import quoted_ids
from sbs.catalog.answers import missing_answers
from sbs.catalog.models import ImportedAnswer, ModelEntry
from sbs.core import jobs
from sbs.core.errors import ServiceError
from sbs.questions.models import QuestionSet
from sbs.studies import selectors
from sbs.studies.blinding import pairs_key, plan_key
from sbs.studies.design import budget_range, plan_assignments, plan_pairs
from sbs.studies.models import (
    MAX_SYSTEMS,
    Answer,
    Assignment,
    FormSubmission,
    GenerationRun,
    Pair,
    Study,
    StudySystem,
    with_systems,
)
from sbs.studies.preflight import Problem, generation_problems
from sbs.studies.selfid import names_itself

__all__ = ["ServiceError"]


class GenerationSettingsError(ServiceError):
    """Generation settings these models cannot run; ``problems`` name the form's fields."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(" ".join(p.message for p in problems))
        self.problems = problems


def submission_once(*, user: User, token: str, create: Callable[[], str]) -> tuple[str, bool]:
    """Run ``create`` (which returns where to go next) once per form token.

    Returns (url, True) the first time; for a token already spent by ``user`` (a reload, a
    double click), (the first submission's url, False) and nothing is created. The token is
    claimed in the same transaction as the creation: a refused creation frees it, and a
    concurrent duplicate waits for the first to commit, then finds its row.
    """
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = FormSubmission.objects.create(token=token, user=user)
        except IntegrityError:
            earlier = FormSubmission.objects.filter(token=token, user=user).first()
            return (earlier.result_url if earlier else ""), False
        url = create()
        FormSubmission.objects.filter(pk=row.pk).update(result_url=url[:500])
        # A form is not sent again after days: forget this user's old tokens.
        FormSubmission.objects.filter(
            user=user, created_at__lt=timezone.now() - timedelta(days=7)
        ).delete()
    return url, True


def study_generation_problems(
    *,
    question_set: QuestionSet,
    systems: Sequence[ModelEntry],
    generation: dict[str, Any],
) -> list[Problem]:
    """What stops this study: a system of imported answers that leaves questions of the set
    unanswered, or generation settings that do not fit a model (``sbs.studies.preflight``).
    Problems name the form's field of the system (model_a, model_b, more_models)."""
    problems = [
        problem
        for position, model in enumerate(systems)
        if (problem := _unanswered_problem(system_field(position), model, question_set)) is not None
    ]
    generated = [m for m in systems if not m.is_imported]
    if generated:
        problems += generation_problems(
            models=generated,
            questions=list(question_set.questions.values_list("external_id", "text")),
            generation=generation,
        )
    return problems


def system_field(position: int) -> str:
    """The study form's field that names the system at ``position``."""
    return ("model_a", "model_b")[position] if position < 2 else "more_models"


def _unanswered_problem(field: str, model: ModelEntry, question_set: QuestionSet) -> Problem | None:
    """A system of imported answers must answer every question of the study's set."""
    if not model.is_imported:
        return None
    missing = missing_answers(model, question_set)
    if not missing:
        return None
    return Problem(
        field,
        _(
            "%(model)s has imported answers for other questions: %(n)d of the %(total)d "
            "questions of “%(set)s” have none (%(ids)s). Import its answers to this set, or "
            "choose another question set."
        )
        % {
            "model": model.name,
            "n": len(missing),
            "total": question_set.questions.count(),
            "set": question_set.name,
            "ids": quoted_ids(missing),
        },
    )


def study_create(
    *,
    owner: User,
    name: str,
    question_set: QuestionSet,
    model_a: ModelEntry,
    model_b: ModelEntry,
    more_models: Sequence[ModelEntry] = (),
    generation: dict[str, Any] | None = None,
    seed: int = 0,
    judgments_per_pair: int | None = None,
    repeat_share: float = 0.0,
    pair_budget: int | None = None,
) -> Study:
    """A draft study of ``model_a``, ``model_b`` and ``more_models`` (up to
    :data:`MAX_SYSTEMS` in all, each once); ``pair_budget``: see :func:`plan_pairs`."""
    systems = [model_a, model_b, *more_models]
    if len({m.pk for m in systems}) < len(systems):
        raise ServiceError(_("A study compares different systems: each may be chosen once."))
    if len(systems) > MAX_SYSTEMS:
        raise ServiceError(_("A study compares at most %(n)d systems.") % {"n": MAX_SYSTEMS})
    if not 0 <= repeat_share <= 0.5:
        raise ServiceError(_("The share of repeated pairs must be between 0 and 0.5."))
    _check_budget(pair_budget, question_set.questions.count(), len(systems))
    generation = {"seed": seed, **(generation or {})}
    problems = study_generation_problems(
        question_set=question_set, systems=systems, generation=generation
    )
    if problems:
        raise GenerationSettingsError(problems)
    settings_ = GenerationSettings.from_dict(generation)
    name = name.strip() or "study"
    if Study.objects.filter(owner=owner, name=name).exists():
        # Names are how a researcher tells studies apart; this is also what stops a form
        # sent again after Back (a fresh page, a fresh token) from creating a twin.
        raise ServiceError(
            _("You already have a study named “%(name)s”; choose another name.") % {"name": name}
        )
    study = Study.objects.create(
        owner=owner,
        name=name,
        question_set=question_set,
        model_a=model_a,
        model_b=model_b,
        generation=settings_.to_dict(),
        seed=seed,
        judgments_per_pair=judgments_per_pair,
        repeat_share=repeat_share,
        pair_budget=pair_budget,
    )
    StudySystem.objects.bulk_create(
        StudySystem(study=study, model=model, position=position)
        for position, model in enumerate(more_models, start=2)
    )
    return study


def _check_budget(budget: int | None, n_questions: int, n_systems: int) -> None:
    """A pair budget must give every pair of systems a question, and no more than all."""
    if budget is None:
        return
    low, high = budget_range(n_questions, n_systems)
    if not low <= budget <= high:
        raise ServiceError(
            _(
                "A budget of %(budget)d pairs does not fit %(systems)d systems on %(questions)d "
                "questions: give at least %(low)d (each pair of systems compared once) and at "
                "most %(high)d (every pair of systems on every question), or leave it empty."
            )
            % {
                "budget": budget,
                "systems": n_systems,
                "questions": n_questions,
                "low": low,
                "high": high,
            }  # fmt: skip
        )


def study_create_from_form(*, owner: User, data: dict[str, Any]) -> Study:
    """A study from the cleaned data of the page's form
    (:class:`sbs.studies.forms.StudyCreateForm`), as the studies page creates it."""
    return study_create(
        owner=owner,
        name=data["name"],
        question_set=data["question_set"],
        model_a=data["model_a"],
        model_b=data["model_b"],
        more_models=list(data.get("more_models") or ()),
        generation={
            "max_new_tokens": data["max_new_tokens"],
            "min_new_tokens": data["min_new_tokens"] or 0,
            "temperature": data["temperature"],
            "use_chat_template": data["use_chat_template"],
            "batch_size": data["batch_size"],
        },
        seed=data["seed"],
        judgments_per_pair=data["judgments_per_pair"],
        repeat_share=data["repeat_share"],
        pair_budget=data.get("pair_budget"),
    )


def study_add_annotators(*, study: Study, users: Iterable[User]) -> int:
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
    *, study: Study, names: Iterable[str], created_by: User
) -> list[tuple[Any, str]]:
    """Create accounts from a list of names; return each user with a one-time invite token
    (``sbs.accounts.services.invite_path`` makes the link)."""
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
            created.append((user, invite_issue(user=user, created_by=created_by)))
        study_add_annotators(study=study, users=[u for u, _ in created])
    return created


def study_remove_annotator(*, study: Study, user: User) -> None:
    """Take an annotator out of a study: their unjudged assignments go, and an unused invite
    of an account made for this study alone is withdrawn (the link may have gone astray).

    Refused once they have voted here: their votes are part of the results, and a vote is
    never deleted behind the analysis's back (close the study instead, or leave them in).
    """
    name = user.get_username()
    with transaction.atomic():
        if not study.annotators.filter(pk=user.pk).exists():
            raise ServiceError(_("%(name)s is not an annotator of this study.") % {"name": name})
        # Locked first: a vote on one of them waits for this transaction, then is refused.
        mine = list(
            Assignment.objects.filter(pair__study=study, annotator=user)
            .select_for_update(of=("self",))
            .values_list("pk", flat=True)
        )
        if Assignment.objects.filter(pk__in=mine, vote__isnull=False).exists():
            raise ServiceError(
                _(
                    "%(name)s has already voted in this study and stays in it: their votes "
                    "are part of the results. Close the study when you have enough votes."
                )
                % {"name": name}
            )
        withdraw_invite = selectors.invite_goes_with_removal(study, user)
        Assignment.objects.filter(pk__in=mine).delete()
        study.annotators.remove(user)
        if withdraw_invite:
            Invite.objects.filter(user=user, used_at__isnull=True).delete()


def study_start(*, study: Study) -> list[GenerationRun]:
    """draft -> generating: one run per system, enqueued on the GPU queue after commit (a
    system of imported answers is filled at once).

    The settings are checked against the models first (a study imported or created before
    the check existed may not fit them)."""
    systems = study.systems()
    if study.status == Study.Status.DRAFT:
        problems = study_generation_problems(
            question_set=study.question_set, systems=systems, generation=study.generation
        )
        if problems:
            raise GenerationSettingsError(problems)
    with transaction.atomic():
        won = Study.objects.filter(pk=study.pk, status=Study.Status.DRAFT).update(
            status=Study.Status.GENERATING
        )
        if not won:
            raise ServiceError(_("The study has already been started."))
        total = study.question_set.questions.count()
        runs = [
            GenerationRun.objects.create(study=study, model=model, total_count=total)
            for model in systems
        ]
        for run in runs:
            if run.model.is_imported:
                _run_from_imported(study, run)
            else:
                jobs.enqueue(run)
    study.status = Study.Status.GENERATING
    if all(run.model.is_imported for run in runs) and study_open_if_ready(study_id=study.pk):
        study.status = Study.Status.OPEN
    return runs


def _model_names(study: Study) -> tuple[str, ...]:
    """The study's model names an answer must not mention (those of 5 or more characters;
    shorter ones match ordinary words)."""
    return tuple(m.name for m in study.systems() if len(m.name) >= 5)


def _run_from_imported(study: Study, run: GenerationRun) -> None:
    """Fill a run with its system's imported answers (no worker): done at once.

    The answers pass the same self-identification check as generated ones, so an imported
    answer that names its system is held for review before any annotator sees it."""
    names = _model_names(study)
    imported = ImportedAnswer.objects.filter(
        system=run.model, question__question_set=study.question_set
    )
    rows = Answer.objects.bulk_create(
        Answer(
            run=run,
            question_id=a.question_id,
            text=a.text,
            prompt_tokens=a.prompt_tokens,
            new_tokens=a.new_tokens,
            seconds=a.seconds,
            stop_reason=Answer.StopReason.UNKNOWN,
            self_identifies=names_itself(a.text, names),
        )
        for a in imported.only("question_id", "text", "prompt_tokens", "new_tokens", "seconds")
    )
    now = timezone.now()
    GenerationRun.objects.filter(pk=run.pk).update(
        status=GenerationRun.Status.DONE, device="imported", done_count=len(rows),
        progress=1.0, started_at=now, finished_at=now,
    )  # fmt: skip


def run_retry(*, run: GenerationRun) -> bool:
    """A failed run goes back to pending and is enqueued again; its answers are kept."""
    return jobs.job_retry(run)


def run_requeue(*, run: GenerationRun) -> None:
    """Send an unfinished run again with fresh attempts (the demo's resume after a stop).

    The stored answers are kept and skipped, so nothing is generated twice.
    """
    jobs.job_requeue(run)


def study_open_if_ready(*, study_id: int) -> bool:
    """generating -> open once every run is done: pairs and assignments are created once.

    A pair whose answer names a model is created *held*: no annotator sees it until the
    researcher has shown, excluded or regenerated that answer.
    """
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
        pairs_create(study)
        pairs_refresh(study=study)
        _assignments_create(study, list(study.annotators.values_list("pk", flat=True)))
    return True


def pairs_create(study: Study) -> None:
    """The study's pairs, as its design plans them (:func:`sbs.studies.design.plan_pairs`)."""
    systems = [m.pk for m in study.systems()]
    questions = list(study.question_set.questions.values_list("pk", flat=True))
    planned = plan_pairs(
        questions, len(systems), budget=study.pair_budget,
        key=pairs_key(study_id=study.pk, salt=study.plan_salt),
    )  # fmt: skip
    Pair.objects.bulk_create(
        Pair(study=study, question_id=q, model_x_id=systems[i], model_y_id=systems[j])
        for q, i, j in planned
    )


def pairs_refresh(*, study: Study, question_ids: Iterable[int] | None = None) -> None:
    """Set each pair's status from its two answers: an excluded answer withdraws the pair;
    a flagged, unreviewed or missing answer holds it; otherwise it is shown."""
    pairs = Pair.objects.filter(study=study)
    answers = Answer.objects.filter(run__study=study)
    if question_ids is not None:
        question_ids = list(question_ids)
        pairs = pairs.filter(question_id__in=question_ids)
        answers = answers.filter(question_id__in=question_ids)
    state: dict[tuple[int, int], str] = {
        (q, m): (Pair.Status.WITHDRAWN if excluded else
                 Pair.Status.HELD if flagged and not reviewed else Pair.Status.SHOWN)
        for q, m, excluded, flagged, reviewed in answers.values_list(
            "question_id", "run__model_id", "excluded", "self_identifies", "reviewed"
        )
    }  # fmt: skip
    rank: dict[str, int] = {Pair.Status.WITHDRAWN: 2, Pair.Status.HELD: 1, Pair.Status.SHOWN: 0}
    by_status: dict[str, list[int]] = {}
    for pk, q, x, y, current in pairs.values_list(
        "pk", "question_id", "model_x_id", "model_y_id", "status"
    ):
        # A missing answer holds the pair; the worse of the two answers' states decides.
        status = max(
            state.get((q, x), Pair.Status.HELD), state.get((q, y), Pair.Status.HELD),
            key=rank.__getitem__,
        )  # fmt: skip
        if status != current:
            by_status.setdefault(status, []).append(pk)
    for status, pks in by_status.items():
        Pair.objects.filter(pk__in=pks).update(status=status)


def _assignments_create(study: Study, annotator_ids: list[int]) -> None:
    systems = {pk: (x, y) for pk, x, y in study.pairs.values_list("pk", "model_x_id", "model_y_id")}
    plan = plan_assignments(
        list(systems),
        annotator_ids,
        judgments_per_pair=study.judgments_per_pair,
        repeat_share=study.repeat_share,
        key=plan_key(study_id=study.pk, salt=study.plan_salt, batch=min(annotator_ids, default=0)),
        systems=systems,
    )
    first: dict[tuple[int, int], Assignment] = {}
    repeats = []
    for item in plan:
        x, y = systems[item.pair_id]
        assignment = Assignment(
            pair_id=item.pair_id,
            annotator_id=item.annotator_id,
            left_model_id=x if item.a_on_left else y,
            order=item.order,
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


def run_claim(*, run_id: int, worker: str, device: str, max_attempts: int) -> jobs.Lease | None:
    """Claim a generation run; its answers are upserts on (run, question)."""
    return jobs.job_claim(
        GenerationRun, run_id, worker=worker, device=device, max_attempts=max_attempts
    )


@dataclass(frozen=True)
class NewAnswer:
    question_id: int
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float
    tokenize_seconds: float
    batch_size: int
    stop_reason: str


_ANSWER_UPDATE = ["text", "prompt_tokens", "new_tokens", "seconds", "tokenize_seconds",
                  "batch_size", "stop_reason", "self_identifies", "reviewed", "fence"]  # fmt: skip


def answers_upsert(*, lease: jobs.Lease, answers: list[NewAnswer]) -> None:
    """Store a batch of answers under the run's lease (nothing when the lease is lost).

    Upserts on (run, question); each answer is checked for a model naming itself. In an
    open study (an answer generated again) the pairs of these questions are re-evaluated.
    """
    run = GenerationRun.objects.get(pk=lease.pk)
    run.study = with_systems().get(pk=run.study_id)
    names = _model_names(run.study)
    rows = [
        Answer(
            run_id=run.pk,
            fence=lease.fence,
            self_identifies=names_itself(a.text, names),
            reviewed=False,
            **asdict(a),
        )
        for a in answers
    ]
    with lease.guard():
        Answer.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["run", "question"],
            update_fields=_ANSWER_UPDATE,
        )  # fmt: skip
        lease.update(done_count=Answer.objects.filter(run_id=run.pk).count())
        if run.study.status != Study.Status.GENERATING:
            pairs_refresh(study=run.study, question_ids=[a.question_id for a in answers])


def run_finish(*, lease: jobs.Lease) -> None:
    with lease.guard():
        jobs.job_finish(lease, done_count=F("total_count"))
    run = GenerationRun.objects.get(pk=lease.pk)
    study_open_if_ready(study_id=run.study_id)


def answer_review(*, study: Study, answer_id: int, decision: str) -> bool:
    """The researcher's decision on an answer: ``show``, ``exclude`` or ``regenerate``.

    ``show`` marks it reviewed (its pair is shown unless another answer holds it);
    ``exclude`` withdraws the pair from annotators and the analysis; ``regenerate`` deletes
    the answer and sends its run again with another sampling seed for that question (with
    greedy decoding the new answer will be the same: use show or exclude there).
    """
    answer = (
        Answer.objects.filter(pk=answer_id, run__study=study).select_related("run__model").first()
    )
    if answer is None:
        return False
    with transaction.atomic():
        if decision == "show":
            Answer.objects.filter(pk=answer.pk).update(reviewed=True, excluded=False)
        elif decision == "exclude":
            Answer.objects.filter(pk=answer.pk).update(excluded=True)
        elif decision == "regenerate":
            run = answer.run
            if run.model.is_imported:
                raise ServiceError(
                    _(
                        "This answer was imported: there is no model to generate it again. "
                        "Show it or exclude it."
                    )
                )
            if run.status in (GenerationRun.Status.PENDING, GenerationRun.Status.RUNNING):
                raise ServiceError(_("This model's answers are still being generated."))
            Pair.objects.filter(study=study, question_id=answer.question_id).update(
                regenerations=F("regenerations") + 1
            )
            answer.delete()
            GenerationRun.objects.filter(pk=run.pk).update(
                status=GenerationRun.Status.PENDING, attempts=0, error="", finished_at=None
            )
            jobs.enqueue(run)
        else:
            raise ServiceError(_("Unknown decision."))
        if study.status != Study.Status.GENERATING:
            pairs_refresh(study=study, question_ids=[answer.question_id])
    return True


def regeneration_offsets(*, run: GenerationRun) -> dict[int, int]:
    """question id -> how many times its answers were generated again (a seed offset;
    every pair of the question counts the same regenerations)."""
    return dict(
        Pair.objects.filter(study_id=run.study_id, regenerations__gt=0)
        .values("question_id")
        .annotate(n=Max("regenerations"))
        .values_list("question_id", "n")
    )
