from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from adaptation.modelfiles import ModelFileError
from sbs.catalog import services
from sbs.catalog.models import ModelEntry


class Command(BaseCommand):
    help = (
        "Register a model: a Hugging Face folder (config, tokenizer, *.safetensors), a .gguf "
        "file, or a .zip/.tar.gz of either. Pickled weights and custom code are refused. "
        "The files are copied into MODEL_STORE. The path must lie under MODEL_IMPORT_ROOTS "
        "(read without following links), as on the web page, unless --trust-path is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("path")
        parser.add_argument("--parent", help="name of the model this one was adapted from")
        parser.add_argument(
            "--trust-path",
            action="store_true",
            help="read PATH wherever it is, following links (for a shell user's own files); "
            "without it PATH must lie under MODEL_IMPORT_ROOTS",
        )

    def handle(
        self,
        *args: Any,
        name: str,
        path: str,
        parent: str | None,
        trust_path: bool,
        **options: Any,
    ) -> None:
        if trust_path and not Path(path).exists():
            raise CommandError(f"{path}: no such file or folder")
        parent_entry = None
        if parent:
            parent_entry = ModelEntry.objects.filter(name=parent).first()
            if parent_entry is None:
                raise CommandError(f"no model named {parent!r}")
        try:
            if trust_path:
                entry = services.model_register(name=name, source=Path(path), parent=parent_entry)
            else:
                entry = services.model_register(
                    name=name, server_path=str(Path(path).absolute()), parent=parent_entry
                )
        except (ModelFileError, services.ServiceError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"registered {entry.name!r} ({entry.kind}, {entry.total_bytes / 1e6:.1f} MB, "
                f"sha256 {entry.sha256[:12]}…) at {services.model_path(entry)}"
            )
        )
