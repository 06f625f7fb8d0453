from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sbs.studies.transfer import TransferError, export_parse, study_import


class Command(BaseCommand):
    help = (
        "Import a study written by export_study. Its two models must already be registered "
        "(same name and sha256); missing annotators are created without a usable password. "
        "Nothing is written on error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--owner", required=True, help="user name of the researcher")
        parser.add_argument(
            "--question-set-name",
            default=None,
            help="import the question set under this name (when another set has its name)",
        )

    def handle(
        self,
        *args: Any,
        path: Path,
        owner: str,
        question_set_name: str | None,
        **options: Any,
    ) -> None:
        user_model = get_user_model()
        user = user_model.objects.filter(**{user_model.USERNAME_FIELD: owner}).first()
        if user is None:
            raise CommandError(f"no user named {owner!r}")
        try:
            data = export_parse(path.read_bytes())
        except (OSError, TransferError) as exc:
            raise CommandError(f"{path}: cannot read a JSON export: {exc}") from exc
        try:
            study = study_import(data, owner=user, question_set_name=question_set_name)
        except TransferError as exc:
            raise CommandError(f"{path} was not imported: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(f"imported study {study.name!r} as id {study.pk}, owner {owner}")
        )
