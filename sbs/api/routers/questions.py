"""Question sets: list, one set with its questions, import (the page's form and importer:
the whole file is validated first, every problem is named with its line, and nothing is
written unless all of it is)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils.datastructures import MultiValueDict
from ninja import File, Form, Router, Status, UploadedFile

from sbs.api import selectors
from sbs.api.auth import caller
from sbs.api.errors import FormInvalid
from sbs.api.schemas import FileErrors, ModelOut, QuestionSetDetailOut, QuestionSetOut
from sbs.catalog import answers
from sbs.catalog.forms import AnswerImportForm
from sbs.questions import selectors as question_selectors
from sbs.questions import services as question_services
from sbs.questions.forms import QuestionImportForm
from sbs.questions.importers import detect_format
from sbs.questions.models import QuestionSet

router = Router(tags=["question sets"])


@router.get("", response=list[QuestionSetOut], url_name="question_set_list")
def question_set_list(request: HttpRequest) -> list[dict[str, Any]]:
    """Every question set (a library shared by the researchers)."""
    return [
        selectors.question_set_out(q, q.n)  # type: ignore[attr-defined]
        for q in question_selectors.question_sets_with_counts()
    ]


@router.post(
    "",
    response={201: QuestionSetOut, 400: FileErrors},
    url_name="question_set_import",
    openapi_extra={"description": "A .csv or .jsonl file (UTF-8) with a `question` column."},
)
def question_set_import(
    request: HttpRequest, name: Form[str], file: File[UploadedFile]
) -> Status[dict[str, Any]]:
    """Import a question set as the question sets page does."""
    form = QuestionImportForm(data={"name": name}, files=MultiValueDict({"file": [file]}))
    if not form.is_valid():
        raise FormInvalid(form)
    upload = form.cleaned_data["file"]
    qset = question_services.question_set_import(
        name=form.cleaned_data["name"],
        data=upload.read(),
        filename=upload.name,
        user=caller(request),
    )
    return Status(201, selectors.question_set_out(qset))


@router.get("/{int:question_set_id}", response=QuestionSetDetailOut, url_name="question_set_detail")
def question_set_detail(request: HttpRequest, question_set_id: int) -> dict[str, Any]:
    qset = get_object_or_404(QuestionSet, pk=question_set_id)
    items = list(qset.questions.values("external_id", "text", "category", "reference", "position"))
    return {**selectors.question_set_out(qset, len(items)), "items": items}


@router.post(
    "/{int:question_set_id}/answers",
    response={201: list[ModelOut], 400: FileErrors},
    url_name="answers_import",
    openapi_extra={
        "description": "Pre-generated answers to this set, a .jsonl or .csv file (UTF-8): "
        "`question_id`, `system`, `answer`; optional `prompt_tokens`, `new_tokens`, "
        "`seconds`, `metadata`. Every system must answer every question; each becomes a "
        "model a study can compare."
    },
)
def answers_import(
    request: HttpRequest, question_set_id: int, file: File[UploadedFile]
) -> Status[list[dict[str, Any]]]:
    """Import answers from elsewhere as the question set's page does."""
    qset = get_object_or_404(QuestionSet, pk=question_set_id)
    form = AnswerImportForm(data={}, files=MultiValueDict({"file": [file]}))
    if not form.is_valid():
        raise FormInvalid(form)
    upload = form.cleaned_data["file"]
    systems = answers.answers_import(
        data=upload.read(),
        file_format=detect_format(upload.name),
        question_set=qset,
        user=caller(request),
    )
    return Status(201, [selectors.model_out(s) for s in systems])
