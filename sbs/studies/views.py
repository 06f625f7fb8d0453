"""Researcher pages: question sets, models, studies. Thin: parse, call a service, render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sbs.accounts import services as account_services
from sbs.accounts.roles import AuthedRequest, researcher_required
from sbs.studies import selectors, services
from sbs.studies.forms import AddAnnotatorsForm, StudyCreateForm
from sbs.studies.models import Study

# The invite links a researcher issued, kept in their session (study id -> user id ->
# token) so that the annotators page can show them again until they are used, replaced,
# revoked or expired; the database keeps digests only.
_LINKS = "sbs.invite_links"


def _own_study(request: AuthedRequest, pk: int) -> Study:
    return get_object_or_404(Study, pk=pk, owner=request.user)


def _links_held(request: AuthedRequest, study: Study) -> dict[int, str]:
    held = request.session.get(_LINKS, {}).get(str(study.pk), {})
    return {int(user_id): token for user_id, token in held.items()}


def _links_keep(request: AuthedRequest, study: Study, links: dict[int, str]) -> None:
    every = dict(request.session.get(_LINKS, {}))
    if links:
        every[str(study.pk)] = {str(user_id): token for user_id, token in links.items()}
    else:
        every.pop(str(study.pk), None)
    request.session[_LINKS] = every


def _already_sent(request: AuthedRequest, url: str, fallback: str) -> HttpResponse:
    messages.info(request, _("This form had already been sent; nothing was created twice."))
    return redirect(url or fallback)


@researcher_required
def study_list(request: AuthedRequest) -> HttpResponse:
    form = StudyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data

        def create() -> str:
            study = services.study_create_from_form(owner=request.user, data=d)
            return reverse("studies:detail", args=[study.pk])

        try:
            url, first = services.submission_once(
                user=request.user, token=d["form_token"], create=create
            )
        except services.GenerationSettingsError as exc:
            for problem in exc.problems:
                form.add_error(problem.field, problem.message)
        except (services.ServiceError, ValueError) as exc:
            form.add_error(None, str(exc))
        else:
            if not first:
                return _already_sent(request, url, reverse("studies:list"))
            return redirect(url)
    studies = selectors.studies_of(request.user)
    return render(request, "studies/study_list.html", {"form": form, "studies": studies})


@require_GET
@researcher_required
def study_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    study = _own_study(request, pk)
    return render(
        request,
        "studies/study_detail.html",
        {
            "study": study,
            "runs": selectors.runs_of(study),
            "generation": selectors.generation_summary(study),
            "annotators": selectors.annotator_rows(study),
            "flagged": selectors.flagged_answers(study),
            "refresh": study.status == Study.Status.GENERATING,
        },
    )


@never_cache
@researcher_required
def study_annotators(request: AuthedRequest, pk: int) -> HttpResponse:
    """Annotators and their invite links: add (existing accounts, or names that become
    accounts with links), see progress, issue a new link, revoke one, remove an annotator.
    Every POST redirects here; the links issued stay on this page until they stop working."""
    study = _own_study(request, pk)
    form = AddAnnotatorsForm(request.POST or None, study=study)
    here = reverse("studies:annotators", args=[study.pk])
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data

        def create() -> str:
            added = services.study_add_annotators(study=study, users=d["existing"])
            created = services.annotators_create_bulk(
                study=study, names=d["names"], created_by=request.user
            )
            _links_keep(
                request, study, {**_links_held(request, study), **{u.pk: t for u, t in created}}
            )
            n = added + len(created)
            messages.success(
                request,
                ngettext("%(n)d annotator added.", "%(n)d annotators added.", n) % {"n": n},
            )
            return f"{here}#invite-links" if created else here

        url, first = services.submission_once(
            user=request.user, token=d["form_token"], create=create
        )
        if not first:
            return _already_sent(request, url, here)
        return redirect(url)
    held = _links_held(request, study)
    rows = selectors.annotator_rows(study, tokens=held)
    live = {r.user.pk: r.invite.token for r in rows if r.invite.token}
    if live != held:  # used, replaced, revoked or expired: forget them
        _links_keep(request, study, live)
    links = [
        (r.user, request.build_absolute_uri(account_services.invite_path(r.invite.token)))
        for r in rows
        if r.invite.token
    ]
    return render(
        request,
        "studies/annotators.html",
        {
            "study": study,
            "rows": rows,
            "links": links,
            "form": form,
            "invite_max_age_days": account_services.invite_max_age().days,
        },
    )


def _chosen_annotator(request: AuthedRequest, study: Study) -> User | None:
    raw = (request.POST if request.method == "POST" else request.GET).get("annotator", "")
    if not (raw.isascii() and raw.isdigit()):
        return None
    user: User | None = study.annotators.filter(pk=int(raw)).first()
    return user


def _annotator_action(request: AuthedRequest, pk: int, action: Any) -> HttpResponse:
    study = _own_study(request, pk)
    here = reverse("studies:annotators", args=[study.pk])
    user = _chosen_annotator(request, study)
    if user is None:
        messages.error(request, _("Choose an annotator of this study."))
        return redirect(here)
    try:
        action(study, user)
    except (account_services.InviteError, services.ServiceError) as exc:
        messages.error(request, str(exc))
    return redirect(f"{here}#annotator-{user.pk}")


@never_cache
@researcher_required
@require_POST
def study_reinvite(request: AuthedRequest, pk: int) -> HttpResponse:
    """A new invite link for an annotator of this study who has not set a password yet; the
    old link stops working. The link is kept on the annotators page."""

    def reissue(study: Study, user: User) -> None:
        token = account_services.invite_reissue(study=study, user=user, requested_by=request.user)
        _links_keep(request, study, {**_links_held(request, study), user.pk: token})
        messages.success(
            request,
            _("A new invite link for %(name)s; the old one no longer works.")
            % {"name": user.get_username()},
        )

    return _annotator_action(request, pk, reissue)


@researcher_required
@require_POST
def study_revoke_invite(request: AuthedRequest, pk: int) -> HttpResponse:
    """Withdraw an annotator's unused invite link."""

    def revoke(study: Study, user: User) -> None:
        if account_services.invite_revoke(study=study, user=user, requested_by=request.user):
            messages.success(
                request,
                _("The invite link of %(name)s no longer works.") % {"name": user.get_username()},
            )
        else:
            messages.info(
                request, _("%(name)s had no unused link.") % {"name": user.get_username()}
            )

    return _annotator_action(request, pk, revoke)


@researcher_required
@require_http_methods(["GET", "POST"])
def study_remove_annotator(request: AuthedRequest, pk: int) -> HttpResponse:
    """Take an annotator out of the study (refused once they have voted in it): GET asks
    for confirmation, saying what goes; POST removes."""
    if request.method == "GET":
        study = _own_study(request, pk)
        user = _chosen_annotator(request, study)
        if user is None:
            messages.error(request, _("Choose an annotator of this study."))
            return redirect("studies:annotators", study.pk)
        return render(
            request,
            "studies/annotator_remove.html",
            {"study": study, "annotator": user, **selectors.removal_effects(study, user)},
        )

    def remove(study: Study, user: User) -> None:
        services.study_remove_annotator(study=study, user=user)
        messages.success(
            request,
            _("%(name)s is no longer an annotator of this study.") % {"name": user.get_username()},
        )

    return _annotator_action(request, pk, remove)


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
