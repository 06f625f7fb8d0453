import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sbs.studies.models import Study
from sbs.studies.transfer import study_export


class Command(BaseCommand):
    help = (
        "Export a whole study as JSON: questions, model metadata (not the files), runs, "
        "answers with timings, pairs, assignments, votes with their history, annotators."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study_id", type=int)
        parser.add_argument("--out", required=True, help="file to write, or - for stdout")

    def handle(self, *args: Any, study_id: int, out: str, **options: Any) -> None:
        study = Study.objects.filter(pk=study_id).first()
        if study is None:
            raise CommandError(f"no study with id {study_id}")
        text = json.dumps(study_export(study), ensure_ascii=False, indent=1, sort_keys=True)
        if out == "-":
            self.stdout.write(text)
            return
        Path(out).write_text(text + "\n", encoding="utf-8")
        self.stderr.write(self.style.SUCCESS(f"study {study_id} ({study.name!r}) written to {out}"))
