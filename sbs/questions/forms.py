from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from sbs.core.uploads import refuse_if_larger


class QuestionImportForm(forms.Form):
    name = forms.CharField(label=_("Name of the set"), max_length=200)
    file = forms.FileField(label=_("File (.csv or .jsonl, UTF-8)"))

    def clean_file(self) -> UploadedFile[Any]:
        upload: UploadedFile[Any] = self.cleaned_data["file"]
        refuse_if_larger(upload, settings.QUESTION_FILE_MAX_BYTES, _("The question file"))
        return upload
