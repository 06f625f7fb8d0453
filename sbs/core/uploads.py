"""Upload limits shared by every form that takes a file."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _


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


def refuse_if_larger(upload: UploadedFile[Any] | None, limit: int, what: Any) -> None:
    """Refuse by the size the upload declares, before a byte of it is read."""
    size = (upload.size or 0) if upload is not None else 0
    if size > limit:
        raise forms.ValidationError(
            _("%(what)s is %(size)s; the limit is %(limit)s.")
            % {"what": what, "size": filesizeformat(size), "limit": filesizeformat(limit)}
        )
