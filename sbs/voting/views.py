"""The annotator's screens. Nothing rendered here names a model: answers go by position."""

from __future__ import annotations

import time

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from sbs.accounts.roles import AuthedRequest
from sbs.studies.models import Assignment, Study
from sbs.voting import selectors
from sbs.voting.models import Choice
from sbs.voting.services import VoteError, vote_record

_SHOWN_SALT = "sbs.voting.shown"


class VoteForm(forms.Form):
    assignment = forms.IntegerField(widget=forms.HiddenInput)
    shown = forms.CharField(widget=forms.HiddenInput)
    choice = forms.ChoiceField(choices=Choice.choices)
    comment = forms.CharField(
        label=gettext_lazy("Comment (optional)"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


def _shown_token(assignment_id: int) -> str:
    """A signed (assignment, time shown) stamp: the server measures time on the page."""
    return signing.dumps([assignment_id, time.time()], salt=_SHOWN_SALT)


def _seconds_on_page(token: str, assignment_id: int) -> float:
    try:
        shown_id, shown_at = signing.loads(token, salt=_SHOWN_SALT, max_age=7 * 24 * 3600)
    except signing.BadSignature:
        raise VoteError(_("The page expired; please vote again.")) from None
    if shown_id != assignment_id:
        raise VoteError(_("The page does not match this pair."))
    return max(0.0, time.time() - float(shown_at))


@login_required
def my_studies(request: AuthedRequest) -> HttpResponse:
    return render(
        request, "voting/my_studies.html", {"rows": selectors.annotator_studies(request.user)}
    )


@login_required
def guidelines(request: AuthedRequest) -> HttpResponse:
    return render(request, "voting/guidelines.html")


@login_required
def vote(request: AuthedRequest, study_id: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=study_id)
    if not Assignment.objects.filter(pair__study=study, annotator_id=request.user.pk).exists():
        raise Http404
    if request.method == "POST":
        form = VoteForm(request.POST)
        if form.is_valid():
            d = form.cleaned_data
            try:
                seconds = _seconds_on_page(d["shown"], d["assignment"])
                vote_record(
                    annotator=request.user,
                    assignment_id=d["assignment"],
                    choice=d["choice"],
                    seconds_on_page=seconds,
                    comment=d["comment"],
                )
            except VoteError as exc:
                messages.error(request, str(exc))
            return redirect("voting:vote", study_id=study.pk)
        messages.error(request, _("Choose one of the four answers."))
        return redirect("voting:vote", study_id=study.pk)
    done, total, held = selectors.progress(request.user, study)
    assignment = (
        selectors.next_assignment(request.user, study)
        if study.status == Study.Status.OPEN
        else None
    )
    context: dict[str, object] = {
        "study_id": study.pk,
        "study_name": study.name,
        "done": done,
        "total": total,
        "held": held,
        "status": study.status,
    }
    if assignment is not None:
        screen = selectors.screen_for(assignment, study)
        context["screen"] = screen
        context["form"] = VoteForm(
            initial={"assignment": assignment.pk, "shown": _shown_token(assignment.pk)}
        )
        context["position"] = done + 1
    return render(request, "voting/vote.html", context)
