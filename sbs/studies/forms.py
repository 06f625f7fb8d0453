from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from sbs.studies.models import ModelEntry, QuestionSet


class UploadLimitHandler(FileUploadHandler):
    """First in ``FILE_UPLOAD_HANDLERS``: cuts off a request whose body is larger than
    ``MAX_UPLOAD_BYTES`` plus ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (the form fields) before any of
    it is written to disk, as Django does for oversized form data (a 400 response). The forms
    below check each file's size against its own limit and name it."""

    def _limit(self) -> int:
        return int(settings.MAX_UPLOAD_BYTES) + int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None
    ) -> None:
        self._received = 0
        if content_length > self._limit():
            raise RequestDataTooBig("Request body exceeded MAX_UPLOAD_BYTES.")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self._received = getattr(self, "_received", 0) + len(raw_data)
        if self._received > self._limit():  # a body longer than it said
            raise RequestDataTooBig("Request body exceeded MAX_UPLOAD_BYTES.")
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _refuse_if_larger(upload: UploadedFile | None, limit: int, what: Any) -> None:
    """Refuse by the size the upload declares, before a byte of it is read."""
    size = (upload.size or 0) if upload is not None else 0
    if size > limit:
        raise forms.ValidationError(
            _("%(what)s is %(size)s; the limit is %(limit)s.")
            % {"what": what, "size": filesizeformat(size), "limit": filesizeformat(limit)}
        )


class QuestionImportForm(forms.Form):
    name = forms.CharField(label=_("Name of the set"), max_length=200)
    file = forms.FileField(label=_("File (.csv or .jsonl, UTF-8)"))

    def clean_file(self) -> UploadedFile:
        upload = self.cleaned_data["file"]
        _refuse_if_larger(upload, settings.QUESTION_FILE_MAX_BYTES, _("The question file"))
        return upload


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

    def clean_archive(self) -> UploadedFile | None:
        upload = self.cleaned_data.get("archive")
        _refuse_if_larger(upload, settings.MAX_UPLOAD_BYTES, _("The uploaded file"))
        return upload

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
