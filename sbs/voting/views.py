"""The annotator's screens. Nothing rendered here names a model: answers go by position."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from sbs.accounts.roles import AuthedRequest, annotator_required
from sbs.studies.models import Study
from sbs.voting import selectors
from sbs.voting.models import Choice
from sbs.voting.services import AlreadyJudged, NoSuchAssignment, VoteError, vote_record
from sbs.voting.shown import seconds_on_page, shown_token


class VoteForm(forms.Form):
    assignment = forms.IntegerField(widget=forms.HiddenInput)
    shown = forms.CharField(widget=forms.HiddenInput)
    choice = forms.ChoiceField(label=gettext_lazy("Your choice"), choices=Choice.choices)
    comment = forms.CharField(
        label=gettext_lazy("Comment (optional)"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


@annotator_required
def my_studies(request: AuthedRequest) -> HttpResponse:
    return render(
        request, "voting/my_studies.html", {"rows": selectors.annotator_studies(request.user)}
    )


@annotator_required
def guidelines(request: AuthedRequest) -> HttpResponse:
    return render(request, "voting/guidelines.html")


@annotator_required
def vote(request: AuthedRequest, study_id: int) -> HttpResponse:
    if request.method != "POST":
        return _vote_page(request, study_id)
    # The service checks that the assignment is this annotator's in this study; the study
    # and membership are read again only to answer a refusal (404 for a stranger).
    form = VoteForm(request.POST)
    try:
        if not form.is_valid():
            raise VoteError(_("Choose one of the four answers."))
        d = form.cleaned_data
        vote_record(
            annotator=request.user,
            assignment_id=d["assignment"],
            choice=d["choice"],
            seconds_on_page=seconds_on_page(d["shown"], d["assignment"]),
            comment=d["comment"],
            study_id=study_id,
        )
    except NoSuchAssignment:
        raise Http404 from None
    except AlreadyJudged as exc:  # a second tab or an old page: offer the change
        messages.warning(request, str(exc))
        return redirect("voting:vote_change", study_id=study_id, assignment_id=exc.assignment_id)
    except VoteError as exc:
        _annotated_study(request, study_id)  # a stranger gets 404, not the message
        messages.error(request, str(exc))
    return redirect("voting:vote", study_id=study_id)


def _vote_page(request: AuthedRequest, study_id: int) -> HttpResponse:
    """The next pair, with the study and the annotator's progress."""
    found = selectors.next_pair(request.user, study_id)
    if found is None:  # no such study, or not theirs
        raise Http404
    study, (done, total, held, _assigned), screen = found.study, found.progress, found.screen
    context: dict[str, object] = {
        "study_id": study.pk,
        "study_name": study.name,
        "done": done,
        "total": total,
        "held": held,
        "status": study.status,
    }
    if screen is not None:
        context["screen"] = screen
        context["form"] = VoteForm(
            initial={"assignment": screen.assignment_id, "shown": shown_token(screen.assignment_id)}
        )
        context["position"] = done + 1
    return render(request, "voting/vote.html", context)


@annotator_required
def votes(request: AuthedRequest, study_id: int) -> HttpResponse:
    """The annotator's own votes in this study: question and choice, never a model."""
    study = _annotated_study(request, study_id)
    return render(
        request,
        "voting/votes.html",
        {
            "study_id": study.pk,
            "status": study.status,
            "votes": selectors.my_votes(request.user, study),
        },
    )


@annotator_required
def vote_change(request: AuthedRequest, study_id: int, assignment_id: int) -> HttpResponse:
    """The pair as it was shown, the earlier choice marked; a new choice writes a revision."""
    study = _annotated_study(request, study_id)
    assignment = selectors.own_assignment(request.user, study, assignment_id)
    if assignment is None:
        raise Http404
    if not hasattr(assignment, "vote"):  # not judged yet: the vote screen judges it
        return redirect("voting:vote", study_id=study.pk)
    if request.method == "POST":
        form = VoteForm(request.POST)
        if form.is_valid() and form.cleaned_data["assignment"] == assignment.pk:
            d = form.cleaned_data
            try:
                outcome = vote_record(
                    annotator=request.user,
                    assignment_id=assignment.pk,
                    choice=d["choice"],
                    seconds_on_page=seconds_on_page(d["shown"], assignment.pk),
                    comment=d["comment"],
                    change=True,
                )
            except VoteError as exc:
                messages.error(request, str(exc))
            else:
                if outcome.changed:
                    messages.success(request, _("Your vote was changed."))
                return redirect("voting:votes", study_id=study.pk)
        else:
            messages.error(request, _("Choose one of the four answers."))
    vote = assignment.vote
    return render(
        request,
        "voting/vote_change.html",
        {
            "study_id": study.pk,
            "screen": selectors.screen_for(assignment, study),
            "number": assignment.order + 1,
            "current": vote.choice,
            "can_change": study.status == Study.Status.OPEN,
            "form": VoteForm(
                initial={
                    "assignment": assignment.pk,
                    "shown": shown_token(assignment.pk),
                    "comment": vote.comment,
                }
            ),
        },
    )


def _annotated_study(request: AuthedRequest, study_id: int) -> Study:
    study = selectors.annotated_study(request.user, study_id)
    if study is None:  # no such study, or not theirs
        raise Http404
    return study
