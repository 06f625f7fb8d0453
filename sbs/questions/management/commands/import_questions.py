from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sbs.questions import services
from sbs.questions.importers import QuestionFileError


class Command(BaseCommand):
    help = "Import a question set from a CSV or JSONL file (UTF-8). Nothing is written on error."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--set", dest="set_name", required=True, help="name of the new set")
        parser.add_argument("--language", default="ru")

    def handle(self, *args: Any, path: Path, set_name: str, language: str, **options: Any) -> None:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            qset = services.question_set_import(
                name=set_name, data=path.read_bytes(), filename=path.name, language=language
            )
        except QuestionFileError as exc:
            raise CommandError(
                f"{path} was not imported:\n" + "\n".join(f"  {e}" for e in exc.errors)
            ) from exc
        except services.ServiceError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"imported {qset.questions.count()} questions into set {qset.name!r} (id {qset.pk})"
            )
        )
