from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from sbs.catalog.models import ModelEntry
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
        label=_("Adapted from"), queryset=ModelEntry.objects.ready(), required=False
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
