"""The researcher's question-set pages."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from sbs.accounts.roles import AuthedRequest, researcher_required
from sbs.questions import selectors, services
from sbs.questions.forms import QuestionImportForm
from sbs.questions.importers import QuestionFileError
from sbs.questions.models import QuestionSet


@researcher_required
def question_sets(request: AuthedRequest) -> HttpResponse:
    form = QuestionImportForm(request.POST or None, request.FILES or None)
    errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            qset = services.question_set_import(
                name=form.cleaned_data["name"],
                data=upload.read(),
                filename=upload.name,
                user=request.user,
            )
        except QuestionFileError as exc:
            errors = [str(e) for e in exc.errors]
        except services.ServiceError as exc:
            errors = [str(exc)]
        else:
            messages.success(
                request, _("Imported %(n)d questions.") % {"n": qset.questions.count()}
            )
            return redirect("questions:sets")
    sets = selectors.question_sets_with_counts()
    return render(
        request, "questions/question_sets.html", {"form": form, "sets": sets, "errors": errors}
    )


@researcher_required
def question_set_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    qset = get_object_or_404(QuestionSet, pk=pk)
    return render(
        request,
        "questions/question_set_detail.html",
        {"qset": qset, "questions": qset.questions.all()},
    )
