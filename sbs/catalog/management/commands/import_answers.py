from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sbs.catalog import answers
from sbs.core.errors import ServiceError
from sbs.questions.importers import QuestionFileError, detect_format
from sbs.questions.models import QuestionSet


class Command(BaseCommand):
    help = (
        "Import pre-generated answers (CSV or JSONL, UTF-8: question_id, system, answer; "
        "optional prompt_tokens, new_tokens, seconds, metadata) to a question set. Each system "
        "becomes a model entry a study can compare. Nothing is written on error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--question-set", dest="set_name", required=True, help="name of the question set"
        )

    def handle(self, *args: Any, path: Path, set_name: str, **options: Any) -> None:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        qset = QuestionSet.objects.filter(name=set_name).first()
        if qset is None:
            raise CommandError(f"no question set named {set_name!r}")
        try:
            systems = answers.answers_import(
                data=path.read_bytes(),
                file_format=detect_format(path.name),
                question_set=qset,
                user=None,
            )
        except QuestionFileError as exc:
            raise CommandError(
                f"{path} was not imported:\n" + "\n".join(f"  {e}" for e in exc.errors)
            ) from exc
        except ServiceError as exc:
            raise CommandError(str(exc)) from exc
        for system in systems:
            n = system.imported_answers.filter(question__question_set=qset).count()
            self.stdout.write(
                self.style.SUCCESS(
                    f"imported {n} answers of {system.name!r} (model id {system.pk})"
                )
            )
