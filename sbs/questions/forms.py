from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from sbs.core.uploads import refuse_if_larger
from sbs.questions.models import Benchmark, PromptFormat


class QuestionImportForm(forms.Form):
    name = forms.CharField(label=_("Name of the set"), max_length=200)
    file = forms.FileField(label=_("File (.csv or .jsonl, UTF-8)"))

    def clean_file(self) -> UploadedFile[Any]:
        upload: UploadedFile[Any] = self.cleaned_data["file"]
        refuse_if_larger(upload, settings.QUESTION_FILE_MAX_BYTES, _("The question file"))
        return upload


class BenchmarkImportForm(forms.Form):
    name = forms.CharField(label=_("Name of the benchmark"), max_length=200)
    file = forms.FileField(label=_("File (.jsonl or .csv, UTF-8)"))
    language = forms.ChoiceField(
        label=_("Language of the prompt"),
        choices=[("ru", _("Russian")), ("en", _("English"))],
        initial="ru",
    )

    def clean_file(self) -> UploadedFile[Any]:
        upload: UploadedFile[Any] = self.cleaned_data["file"]
        refuse_if_larger(upload, settings.QUESTION_FILE_MAX_BYTES, _("The benchmark file"))
        return upload


class ShippedBenchmarkForm(forms.Form):
    shipped = forms.ChoiceField(label=_("Set"))
    name = forms.CharField(label=_("Name (empty: the set's own)"), max_length=200, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from adaptation.benchmarks import SHIPPED_SETS

        super().__init__(*args, **kwargs)
        field = self.fields["shipped"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(key, f"{s.label} — {s.license}") for key, s in SHIPPED_SETS.items()]


class BenchmarkRunForm(forms.Form):
    benchmarks = forms.ModelMultipleChoiceField(
        label=_("Benchmarks"),
        queryset=Benchmark.objects.all(),
        widget=forms.CheckboxSelectMultiple,
    )
    prompt_format = forms.ChoiceField(
        label=_("Prompt format"), choices=PromptFormat.choices, initial=PromptFormat.CLOZE
    )
