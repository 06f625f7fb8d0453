from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        label=_("Name (what the token is for, e.g. the notebook or machine)"), max_length=100
    )
