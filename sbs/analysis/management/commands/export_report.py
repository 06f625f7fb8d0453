"""``manage.py export_report STUDY --format FORMAT --out PATH``; the formats are those of
:data:`sbs.analysis.exports.FORMATS` (csv, forgetting, json, html, dpo, dpo-majority).

A format whose manifest is embedded (JSON, HTML) writes ``PATH``; the others write ``PATH``
and ``PATH.manifest.json`` beside it. Report formats use the cached report when it matches
the current votes and compute it here otherwise (a command may take its time; a web
request may not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from sbs.analysis import exports, services
from sbs.analysis.models import ReportCache
from sbs.studies.models import Study


class Command(BaseCommand):
    help = "Export a study's votes, report or preference dataset, with its manifest."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", type=int, help="study id")
        parser.add_argument("--format", required=True, choices=list(exports.FORMATS), dest="fmt")
        parser.add_argument("--out", required=True, type=Path)
        parser.add_argument(
            "--aggregate",
            choices=["none", "majority"],
            default="none",
            help="dpo: one record per vote (none) or per question by majority "
            "(the same as --format dpo-majority)",
        )
        parser.add_argument(
            "--language", default=settings.LANGUAGE_CODE, help="language of the HTML report"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            study = Study.objects.select_related("model_a", "model_b", "question_set").get(
                pk=opts["study"]
            )
        except Study.DoesNotExist:
            raise CommandError(f"no study {opts['study']}") from None
        out_path: Path = opts["out"]
        spec = exports.FORMATS[exports.format_key(opts["fmt"], opts["aggregate"])]
        with translation.override(opts["language"]):
            if spec.source is exports.Source.VOTES:
                result = exports.export_file(
                    study, spec.key, settings=services.report_settings(study)
                )
            else:
                result = self._report(study, spec.key, opts["language"])
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_bytes(result.data)
        written = [out_path]
        if not result.manifest_embedded:
            sidecar = out_path.with_name(out_path.name + ".manifest.json")
            sidecar.write_bytes(exports.json_bytes(result.manifest))
            written.append(sidecar)
        for path in written:
            self.stdout.write(f"wrote {path}")

    def _report(self, study: Study, fmt: str, language: str) -> exports.ExportFile:
        fingerprint = services.report_fingerprint(study)
        row = ReportCache.objects.filter(
            study=study, fingerprint=fingerprint, status=ReportCache.Status.DONE
        ).first()
        if row is not None and row.report is not None:
            report, plots = row.report, row.plots.get(language) or None
        else:
            self.stderr.write("computing the report (no cached report for the current votes)")
            report, plots = services.report_build(study), None
        return exports.export_file(study, fmt, report=report, plots=plots, fingerprint=fingerprint)
