from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.utils.translation import gettext_lazy as _

from sbs.accounts.models import RESEARCHERS_GROUP
from sbs.catalog.models import ModelEntry
from sbs.questions.models import QuestionSet
from sbs.studies.models import Study


class OnceForm(forms.Form):
    """A form whose POST creates something: it carries a random token, spent by the first
    POST (``sbs.studies.services.submission_once``), so a reload or a double click does
    not create twice. A re-rendered form keeps its token until it succeeds."""

    form_token = forms.CharField(
        widget=forms.HiddenInput,
        min_length=16,
        max_length=64,
        error_messages={
            "required": _("This form was out of date. Check it and send it again."),
            "min_length": _("This form was out of date. Check it and send it again."),
            "max_length": _("This form was out of date. Check it and send it again."),
        },
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["form_token"].initial = secrets.token_urlsafe(24)


class StudyCreateForm(OnceForm):
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
    more_models = forms.ModelMultipleChoiceField(
        label=_("More systems to compare (up to 12 in all; ranked by Bradley–Terry)"),
        queryset=ModelEntry.objects.ready(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
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
    pair_budget = forms.IntegerField(
        label=_(
            "Pairs to judge (a question and two systems each; empty: every pair of systems "
            "on every question)"
        ),
        min_value=1,
        required=False,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        chosen = [data.get("model_a"), data.get("model_b"), *(data.get("more_models") or ())]
        chosen = [m for m in chosen if m is not None]
        if len({m.pk for m in chosen}) < len(chosen):
            raise forms.ValidationError(_("Choose each system once."))
        return data


class AnnotatorChoiceField(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        name = obj.get_full_name() or obj.first_name
        username = str(obj.get_username())
        return f"{username} ({name})" if name and name != username else username


def annotator_accounts(study: Study | None = None) -> Any:
    """Accounts that may be added as annotators: active, not staff, not a superuser, not a
    researcher; those already in ``study`` are left out."""
    accounts = (
        User.objects.filter(is_active=True, is_staff=False, is_superuser=False)
        .exclude(groups__name=RESEARCHERS_GROUP)
        .order_by("username")
    )
    return accounts.exclude(annotated_studies=study) if study is not None else accounts


class AddAnnotatorsForm(OnceForm):
    existing = AnnotatorChoiceField(
        label=_("Existing annotator accounts"),
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": _(
                "%(value)s is not an annotator account that can be added to this study."
            ),
        },
    )
    names = forms.CharField(
        label=_("New annotators, one name per line (accounts and invite links are created)"),
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
    )

    def __init__(self, *args: Any, study: Study | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["existing"]
        assert isinstance(field, AnnotatorChoiceField)
        field.queryset = annotator_accounts(study)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["names"] = [n for n in str(data.get("names") or "").splitlines() if n.strip()]
        if not self.errors and not data.get("existing") and not data["names"]:
            raise forms.ValidationError(_("Choose accounts or type names to add."))
        return data
