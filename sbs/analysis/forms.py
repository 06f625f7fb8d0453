"""Input of the analysis pages."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class ExportForm(forms.Form):
    aggregate = forms.ChoiceField(
        label=_("aggregate"),
        choices=[("none", _("one record per vote")), ("majority", _("majority per question"))],
        required=False,
    )

    def clean_aggregate(self) -> str:
        return self.cleaned_data.get("aggregate") or "none"
