"""Researcher pages: question sets, models, studies. Thin: parse, call a service, render."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from sbs.accounts import selectors as account_selectors
from sbs.accounts import services as account_services
from sbs.accounts.roles import AuthedRequest, researcher_required
from sbs.studies import selectors, services
from sbs.studies.forms import (
    AddAnnotatorsForm,
    StudyCreateForm,
)
from sbs.studies.models import Study


def _own_study(request: AuthedRequest, pk: int) -> Study:
    return get_object_or_404(Study, pk=pk, owner=request.user)


@researcher_required
def study_list(request: AuthedRequest) -> HttpResponse:
    form = StudyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            study = services.study_create(
                owner=request.user,
                name=d["name"],
                question_set=d["question_set"],
                model_a=d["model_a"],
                model_b=d["model_b"],
                generation={
                    "max_new_tokens": d["max_new_tokens"],
                    "min_new_tokens": d["min_new_tokens"] or 0,
                    "temperature": d["temperature"],
                    "use_chat_template": d["use_chat_template"],
                    "batch_size": d["batch_size"],
                },
                seed=d["seed"],
                judgments_per_pair=d["judgments_per_pair"],
                repeat_share=d["repeat_share"],
            )
        except (services.ServiceError, ValueError) as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("studies:detail", pk=study.pk)
    studies = selectors.studies_of(request.user)
    return render(request, "studies/study_list.html", {"form": form, "studies": studies})


@researcher_required
def study_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    study = _own_study(request, pk)
    form = AddAnnotatorsForm(request.POST or None)
    invites: list[tuple[str, str]] = []
    if request.method == "POST" and form.is_valid():
        added = services.study_add_annotators(study=study, users=form.cleaned_data["existing"])
        names = [n for n in form.cleaned_data["names"].splitlines() if n.strip()]
        created = services.annotators_create_bulk(study=study, names=names, created_by=request.user)
        invites = [
            (u.username, request.build_absolute_uri(account_services.invite_path(token)))
            for u, token in created
        ]
        messages.success(request, _("%(n)d annotators added.") % {"n": added + len(created)})
        if not invites:
            return redirect("studies:detail", pk=study.pk)
    runs = selectors.runs_of(study)
    flagged = selectors.flagged_answers(study)
    return render(
        request,
        "studies/study_detail.html",
        {
            "study": study,
            "runs": runs,
            "form": form,
            "invites": invites,
            "annotators": study.annotators.order_by("username"),
            "accounts": account_selectors.accounts_with_invites(
                users=study.annotators.order_by("username")
            ),
            "invite_max_age_days": account_services.invite_max_age().days,
            "flagged": flagged,
            "refresh": study.status == Study.Status.GENERATING,
        },
    )


@researcher_required
@require_POST
def study_action(request: AuthedRequest, pk: int, action: str) -> HttpResponse:
    study = _own_study(request, pk)
    try:
        if action == "start":
            services.study_start(study=study)
        elif action == "close":
            services.study_close(study=study)
        elif action == "reopen":
            services.study_reopen(study=study)
        elif action == "retry":
            for run in study.runs.all():
                services.run_retry(run=run)
        else:
            return HttpResponse(status=400)
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    return redirect("studies:detail", pk=study.pk)


@never_cache
@researcher_required
@require_POST
def study_reinvite(request: AuthedRequest, pk: int) -> HttpResponse:
    """A new invite link for an annotator of this study who has not set a password yet; the
    old link stops working. The link is shown once, on the page this answers with."""
    study = _own_study(request, pk)
    raw = request.POST.get("annotator", "")
    user = study.annotators.filter(pk=int(raw)).first() if raw.isascii() and raw.isdigit() else None
    if user is None:
        messages.error(request, _("Choose an annotator of this study."))
        return redirect("studies:detail", pk=study.pk)
    try:
        token = account_services.invite_reissue(study=study, user=user, requested_by=request.user)
    except account_services.InviteError as exc:
        messages.error(request, str(exc))
        return redirect("studies:detail", pk=study.pk)
    link = request.build_absolute_uri(account_services.invite_path(token))
    return render(
        request,
        "studies/invite_issued.html",
        {
            "study": study,
            "invites": [(user.username, link)],
            "invite_max_age_days": account_services.invite_max_age().days,
        },
    )


@researcher_required
def study_answers(request: AuthedRequest, pk: int) -> HttpResponse:
    study = _own_study(request, pk)
    if request.method == "POST":
        try:
            answer_id = int(request.POST.get("answer", ""))
        except ValueError:
            return HttpResponse(status=400)
        decision = request.POST.get("decision", "")
        if decision not in ("show", "exclude", "regenerate"):
            return HttpResponse(status=400)
        try:
            services.answer_review(study=study, answer_id=answer_id, decision=decision)
        except services.ServiceError as exc:
            messages.error(request, str(exc))
        return redirect(f"{reverse('studies:answers', args=[study.pk])}#answer-{answer_id}")
    answers = selectors.answers_of(study)
    held = selectors.pairs_not_shown(study)
    return render(
        request, "studies/answers.html", {"study": study, "answers": answers, "held": held}
    )
