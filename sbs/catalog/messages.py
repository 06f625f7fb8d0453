"""The model files' messages in the reader's language.

:mod:`adaptation.modelfiles` (no Django) keeps each refusal as an English template marked with
``gettext_noop`` and its params (:class:`~adaptation.modelfiles.Message`). A web request shows
it at once (:func:`message_text`); a worker, which has no reader, stores it as JSON
(:meth:`Message.to_json`) beside the English text, and the page translates it when shown
(:func:`stored_text`). :class:`TranslatableError` does the same for the catalog's own
refusals that a worker may meet (:func:`message_of` finds the message of either).
"""

from __future__ import annotations

from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext

from adaptation.modelfiles import Message, ModelFileError
from sbs.core.errors import ServiceError


def _number(n: int) -> str:
    """A count with the active language's digit grouping (1,234 / 1 234)."""
    return number_format(n, force_grouping=True)


def message_text(message: Message) -> str:
    """The message in the active language (a template without a translation stays English)."""
    return message.text(gettext, _number)


def stored_text(data: Any, fallback: str) -> str:
    """The message stored as :meth:`Message.to_json`, in the active language; ``fallback`` (the
    text stored beside it) when there is none or it cannot be read or formatted."""
    if not data:
        return fallback
    try:
        return message_text(Message.from_json(data))
    except (KeyError, TypeError, ValueError, AttributeError):
        return fallback


class TranslatableError(ServiceError):
    """A refusal whose message is kept to be shown again in another reader's language;
    ``str()`` is its text in the language active when it was raised."""

    def __init__(self, message: Message) -> None:
        self.message = message
        super().__init__(message_text(message))


def message_of(exc: BaseException) -> Message | None:
    """The translatable message of a refusal, or None for any other error."""
    if isinstance(exc, (ModelFileError, TranslatableError)):
        return exc.message
    return None
