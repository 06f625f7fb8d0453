"""Systems known by their answers alone: import a file of pre-generated answers, and say
which questions of a set a system has not answered.

A system is a :class:`ModelEntry` of kind ``answers`` (no files); its answers are
:class:`ImportedAnswer` rows, one per question. A study comparing it copies them into its run
instead of generating (:func:`sbs.studies.services.study_start`).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from sbs.catalog.answer_files import AnswerFileError, ParsedAnswer, coverage_errors, parse_answers
from sbs.catalog.models import ImportedAnswer, ModelEntry
from sbs.core.errors import ServiceError
from sbs.questions.importers import FileFormat, LineError
from sbs.questions.models import QuestionSet


def _system_errors(names: list[str], question_set: QuestionSet) -> list[LineError]:
    """Names taken by model files, and systems that already answered this set."""
    errors = []
    for entry in ModelEntry.objects.filter(name__in=names):
        if not entry.is_imported:
            message = _(
                "“%(name)s” is a registered model with files: import these answers under "
                "another system name"
            )
        elif not entry.ready:
            message = _("the name “%(name)s” is reserved by a running job")
        elif entry.imported_answers.filter(question__question_set=question_set).exists():
            message = _(
                "“%(name)s” already has answers to this question set: import these under "
                "another system name"
            )
        else:
            continue
        errors.append(LineError(0, message % {"name": entry.name}))
    return errors


def answers_digest(system: ModelEntry) -> str:
    """sha256 of the canonical JSON of all of a system's answers (what a study export
    matches it by, as model files are matched by the sha256 of their weights)."""
    rows = (
        ImportedAnswer.objects.filter(system=system)
        .order_by("question__question_set__name", "question__external_id")
        .values_list(
            "question__question_set__name", "question__external_id", "text",
            "prompt_tokens", "new_tokens", "seconds",
        )
    )  # fmt: skip
    canonical = json.dumps([list(r) for r in rows], ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def answers_import(
    *, data: bytes, file_format: FileFormat, question_set: QuestionSet, user: User | None
) -> list[ModelEntry]:
    """Validate the whole file against the set, then store every answer in one transaction.

    Each system named in the file becomes (or, for a system that has not answered this set
    yet, stays) a model entry of kind ``answers``. Refused as a whole, with every problem by
    line (:class:`AnswerFileError`): malformed rows, unknown questions, a system missing
    some of the set's questions, a name taken by a model with files.
    """
    answers = parse_answers(data, file_format)
    questions = dict(question_set.questions.values_list("external_id", "pk"))
    errors = coverage_errors(answers, list(questions))
    by_system: dict[str, list[ParsedAnswer]] = defaultdict(list)
    for answer in answers:
        by_system[answer.system].append(answer)
    errors += _system_errors(sorted(by_system), question_set)
    if errors:
        raise AnswerFileError(sorted(errors, key=lambda e: e.line))
    record = {
        "question_set": question_set.name,
        "file_sha256": hashlib.sha256(data).hexdigest(),
        "at": timezone.now().isoformat(),
    }
    try:
        with transaction.atomic():
            systems = []
            for name, rows in sorted(by_system.items()):
                entry, _created = ModelEntry.objects.get_or_create(
                    name=name,
                    defaults={"kind": ModelEntry.Kind.ANSWERS, "path": "", "sha256": "",
                              "created_by": user},
                )  # fmt: skip
                ImportedAnswer.objects.bulk_create(
                    ImportedAnswer(
                        system=entry,
                        question_id=questions[a.question_id],
                        text=a.text,
                        prompt_tokens=a.prompt_tokens,
                        new_tokens=a.new_tokens,
                        seconds=a.seconds,
                        metadata=a.metadata,
                    )
                    for a in rows
                )
                imports = [*(entry.recipe or {}).get("imported_answers", []),
                           {**record, "answers": len(rows)}]  # fmt: skip
                entry.recipe = {**(entry.recipe or {}), "imported_answers": imports}
                entry.sha256 = answers_digest(entry)
                entry.save(update_fields=["recipe", "sha256"])
                systems.append(entry)
    except IntegrityError as exc:  # another import of the same system at the same moment
        raise ServiceError(
            _(
                "Another import of these systems ran at the same time; nothing was stored. Try again."
            )
        ) from exc
    return systems


def missing_answers(system: ModelEntry, question_set: QuestionSet) -> list[str]:
    """The ids of the set's questions this imported system has no answer to, in order."""
    answered = ImportedAnswer.objects.filter(system=system).values("question_id")
    return list(
        question_set.questions.exclude(pk__in=answered)
        .order_by("position")
        .values_list("external_id", flat=True)
    )
