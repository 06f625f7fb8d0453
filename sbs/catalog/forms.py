from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from adaptation.registry import options
from sbs.catalog.models import WEIGHT_KINDS, ModelEntry
from sbs.core.uploads import refuse_if_larger


class ModelRegisterForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    path = forms.CharField(
        label=_("Path on the server (a model folder or a .gguf file)"), required=False
    )
    archive = forms.FileField(
        label=_("…or upload an archive (.zip, .tar.gz) or a .gguf file"), required=False
    )
    parent = forms.ModelChoiceField(
        label=_("Adapted from"),
        queryset=ModelEntry.objects.ready().filter(kind__in=WEIGHT_KINDS),
        required=False,
    )

    def clean_archive(self) -> UploadedFile[Any] | None:
        upload = self.cleaned_data.get("archive")
        refuse_if_larger(upload, settings.MAX_UPLOAD_BYTES, _("The uploaded file"))
        return upload

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("path")) == bool(data.get("archive")):
            raise forms.ValidationError(_("Give either a path or an uploaded file, not both."))
        return data


class AnswerImportForm(forms.Form):
    """A file of pre-generated answers to one question set (``sbs.catalog.answer_files``)."""

    file = forms.FileField(label=_("File of answers (.jsonl or .csv, UTF-8)"))

    def clean_file(self) -> UploadedFile[Any]:
        upload: UploadedFile[Any] = self.cleaned_data["file"]
        refuse_if_larger(upload, settings.QUESTION_FILE_MAX_BYTES, _("The file of answers"))
        return upload


def config_fields(config_class: type) -> dict[str, forms.Field]:
    """Form fields for the web options of an adaptation config dataclass, built from its field
    metadata (``adaptation/registry.py``): label, bounds, choices, default; labels translated."""
    fields: dict[str, forms.Field] = {}
    for spec in options(config_class):
        described = spec.option
        if not described.web:
            continue
        common: dict[str, Any] = {
            "label": _(described.label),
            "help_text": _(described.help) if described.help else "",
            "required": not spec.optional and spec.type is not bool,
            "initial": spec.default,
        }
        bounds: dict[str, Any] = {"min_value": described.min, "max_value": described.max}
        choices = described.choice_list()
        if spec.many:
            raise TypeError(f"{spec.name}: a list has no web field")
        if choices is not None:
            fields[spec.name] = forms.ChoiceField(
                choices=[(value, _(label)) for value, label in choices], **common
            )
        elif spec.type is bool:
            fields[spec.name] = forms.BooleanField(**common)
        elif spec.type is int:
            fields[spec.name] = forms.IntegerField(**bounds, **common)
        elif spec.type is float:
            fields[spec.name] = forms.FloatField(**bounds, **common)
        else:
            raise TypeError(f"{spec.name}: no web field for {spec.type.__name__}")
    return fields


class AdaptForm(forms.Form):
    """The research recipe's knobs, from ``PipelineConfig``'s field metadata; the defaults run
    in minutes on a laptop CPU. Built per request, so the choices follow the registries."""

    name = forms.CharField(label=_("Name of the adapted model"), max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from adaptation.pipeline import PipelineConfig

        super().__init__(*args, **kwargs)
        self.fields.update(config_fields(PipelineConfig))


# The tasks an ensemble can be built from (``adaptation.tasks.BUILDERS``), as a person reads them.
ENSEMBLE_TASKS = [
    ("wsd", _("Word sense in context (rl-wsd-labeled)")),
    ("medical", _("Medical exam questions (mednsktest)")),
    ("definition", _("Definition → word (wiki-ru-wordnet)")),
    ("translate", _("Translate a Russian word into English")),
    ("arithmetic", _("Add two numbers")),
    ("case", _("Upper-case two English words")),
    ("sentiment", _("Tone of a short Russian review")),
]


class EnsembleForm(forms.Form):
    """An ensemble of task adapters on a model (UDLM): the tasks, the adapters' training, the
    training-free gate ``softmax(TopK(h · W_G) / T)`` and the evaluation against baselines."""

    name = forms.CharField(label=_("Name of the ensemble"), max_length=200)
    tasks = forms.MultipleChoiceField(
        label=_("Tasks (one LoRA adapter each)"),
        choices=ENSEMBLE_TASKS,
        initial=["wsd", "medical", "definition"],
        widget=forms.CheckboxSelectMultiple,
    )
    steps = forms.IntegerField(
        label=_("Training steps per adapter"), min_value=1, max_value=100_000, initial=150
    )
    calibration_items = forms.IntegerField(
        label=_("Calibration prompts per task (the gate's sample)"),
        min_value=1, max_value=10_000, initial=8,
    )  # fmt: skip
    top_k = forms.IntegerField(
        label=_("Top-k adapters per token (0: all)"), min_value=0, max_value=64, initial=1
    )
    granularity = forms.ChoiceField(
        label=_("Routing"),
        choices=[("sequence", _("per sequence (running mean of the inputs)")),
                 ("token", _("per token"))],
        initial="sequence",
    )  # fmt: skip
    temperature = forms.FloatField(label=_("Temperature T"), min_value=0.01, initial=1.0)
    aggregation = forms.ChoiceField(
        label=_("Calibration summary of a prompt"),
        choices=[("mean", _("mean over its tokens")), ("last", _("its last token"))],
        initial="mean",
    )
    evaluate = forms.BooleanField(
        label=_("Score it against the base, each adapter, static merges and the oracle"),
        required=False, initial=True,
    )  # fmt: skip
    max_test_items = forms.IntegerField(
        label=_("Held-out items per task to score (0: all)"),
        min_value=0, max_value=100_000, initial=0,
    )  # fmt: skip

    def clean_tasks(self) -> list[str]:
        tasks: list[str] = self.cleaned_data["tasks"]
        if len(tasks) < 2:
            raise forms.ValidationError(_("Choose at least two tasks."))
        return tasks

    def settings(self) -> dict[str, Any]:
        """The job's settings (``sbs.catalog.ensembles.ensemble_settings``)."""
        data = self.cleaned_data
        gate = {k: data[k] for k in ("top_k", "granularity", "temperature", "aggregation")}
        keep = ("tasks", "steps", "calibration_items", "evaluate", "max_test_items")
        return {**{k: data[k] for k in keep}, "gate": gate}
