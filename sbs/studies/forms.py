from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from sbs.catalog.models import ModelEntry
from sbs.questions.models import QuestionSet


class StudyCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    question_set = forms.ModelChoiceField(
        label=_("Question set"), queryset=QuestionSet.objects.all()
    )
    model_a = forms.ModelChoiceField(
        label=_("Model A (original)"), queryset=ModelEntry.objects.ready()
    )
    model_b = forms.ModelChoiceField(
        label=_("Model B (adapted)"), queryset=ModelEntry.objects.ready()
    )
    max_new_tokens = forms.IntegerField(
        label=_("Max new tokens"), min_value=1, max_value=8192, initial=96
    )
    min_new_tokens = forms.IntegerField(
        label=_("Min new tokens (end of sequence suppressed before)"),
        min_value=0,
        max_value=8192,
        initial=0,
        required=False,
    )
    temperature = forms.FloatField(
        label=_("Temperature (0 = greedy)"), min_value=0, max_value=5, initial=0
    )
    seed = forms.IntegerField(label=_("Seed"), initial=0)
    use_chat_template = forms.BooleanField(
        label=_("Use the chat template"), required=False, initial=True
    )
    batch_size = forms.IntegerField(label=_("Batch size"), min_value=1, max_value=256, initial=16)
    judgments_per_pair = forms.IntegerField(
        label=_("Judgments per pair (empty: every annotator judges every pair)"),
        min_value=1,
        required=False,
    )
    repeat_share = forms.FloatField(
        label=_("Share of pairs shown twice, sides swapped (0 to 0.5)"),
        min_value=0,
        max_value=0.5,
        initial=0,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("model_a") and data.get("model_a") == data.get("model_b"):
            raise forms.ValidationError(_("Choose two different models."))
        return data


class AddAnnotatorsForm(forms.Form):
    existing = forms.ModelMultipleChoiceField(
        label=_("Existing accounts"), queryset=get_user_model().objects.none(), required=False
    )
    names = forms.CharField(
        label=_("New annotators, one name per line (accounts and invite links are created)"),
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["existing"].queryset = get_user_model().objects.filter(is_active=True)  # type: ignore[attr-defined]
