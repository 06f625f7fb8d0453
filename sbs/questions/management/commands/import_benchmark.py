from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from adaptation.benchmarks import SHIPPED_SETS
from sbs.questions import services
from sbs.questions.importers import QuestionFileError


class Command(BaseCommand):
    help = (
        "Import a multiple-choice benchmark from a JSONL or CSV file (UTF-8; JSONL keys "
        "question, choices, answer (0-based), optional id, category, context; CSV columns "
        "the same with choice_1..choice_N), or a set shipped with --shipped. The whole file is "
        "checked first; nothing is written on error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, nargs="?")
        parser.add_argument("--name", default="", help="name of the new benchmark")
        parser.add_argument("--language", default="ru", help="prompt labels: ru or en")
        parser.add_argument(
            "--shipped", choices=list(SHIPPED_SETS), help="a set shipped on PyPI or in data/"
        )

    def handle(
        self,
        *args: Any,
        path: Path | None,
        name: str,
        language: str,
        shipped: str | None,
        **options: Any,
    ) -> None:
        if (path is None) == (shipped is None):
            raise CommandError("give a FILE or --shipped NAME (one of them)")
        try:
            if shipped is not None:
                benchmark = services.benchmark_import_shipped(key=shipped, name=name)
            else:
                assert path is not None
                if not path.is_file():
                    raise CommandError(f"{path}: no such file")
                if not name:
                    raise CommandError("--name is required with a file")
                benchmark = services.benchmark_import(
                    name=name, data=path.read_bytes(), filename=path.name, language=language
                )
        except QuestionFileError as exc:
            raise CommandError(
                f"{path} was not imported:\n" + "\n".join(f"  {e}" for e in exc.errors)
            ) from exc
        except services.ServiceError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"imported {benchmark.items.count()} items into benchmark "
                f"{benchmark.name!r} (id {benchmark.pk})"
            )
        )
