from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from sbs.studies.models import ModelEntry, QuestionSet


class QuestionImportForm(forms.Form):
    name = forms.CharField(label=_("Name of the set"), max_length=200)
    file = forms.FileField(label=_("File (.csv or .jsonl, UTF-8)"))


class ModelRegisterForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    path = forms.CharField(
        label=_("Path on the server (a model folder or a .gguf file)"), required=False
    )
    archive = forms.FileField(
        label=_("…or upload an archive (.zip, .tar.gz) or a .gguf file"), required=False
    )
    parent = forms.ModelChoiceField(
        label=_("Adapted from"), queryset=ModelEntry.objects.all(), required=False
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("path")) == bool(data.get("archive")):
            raise forms.ValidationError(_("Give either a path or an uploaded file, not both."))
        return data


class StudyCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    question_set = forms.ModelChoiceField(
        label=_("Question set"), queryset=QuestionSet.objects.all()
    )
    model_a = forms.ModelChoiceField(
        label=_("Model A (original)"), queryset=ModelEntry.objects.all()
    )
    model_b = forms.ModelChoiceField(
        label=_("Model B (adapted)"), queryset=ModelEntry.objects.all()
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


class AdaptForm(forms.Form):
    """The research recipe's knobs; defaults run in minutes on a laptop CPU."""

    name = forms.CharField(label=_("Name of the adapted model"), max_length=200)
    vocab_size = forms.IntegerField(
        label=_("Vocabulary size"), min_value=300, max_value=262144, initial=32000
    )
    tokenizer_type = forms.ChoiceField(
        label=_("Tokenizer"), choices=[("unigram", "Unigram"), ("bpe", "BPE")], initial="unigram"
    )
    init = forms.ChoiceField(
        label=_("New embeddings initialised by"),
        choices=[
            ("mean", _("mean of the old pieces")),
            ("weighted_mean", _("weighted mean")),
            ("random", _("random (baseline)")),
        ],  # fmt: skip
        initial="mean",
    )
    train_steps = forms.IntegerField(
        label=_("Embedding training steps"), min_value=0, max_value=1_000_000, initial=40
    )
    batch_size = forms.IntegerField(label=_("Batch size"), min_value=1, max_value=1024, initial=4)
    seq_len = forms.IntegerField(
        label=_("Sequence length"), min_value=16, max_value=8192, initial=128
    )
    learning_rate = forms.FloatField(
        label=_("Learning rate"), min_value=1e-7, max_value=1.0, initial=2e-3
    )
    lora_steps = forms.IntegerField(
        label=_("LoRA steps after that (0: none)"), min_value=0, max_value=1_000_000, initial=0
    )
    lora_r = forms.IntegerField(label=_("LoRA rank r"), min_value=1, max_value=1024, initial=8)
    lora_alpha = forms.FloatField(label=_("LoRA alpha"), min_value=1, max_value=4096, initial=512)
    max_corpus_lines = forms.IntegerField(
        label=_("Use at most this many lines of Russian text (empty: all, about 150,000)"),
        min_value=1000,
        required=False,
    )
