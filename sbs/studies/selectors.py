"""Reads for the researcher's study pages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Max, Q, QuerySet
from django.utils.translation import gettext as _

from sbs.accounts.selectors import AccountInvite, accounts_with_invites
from sbs.studies.models import Answer, Assignment, GenerationRun, Pair, Study, with_systems


def studies_of(owner: User) -> QuerySet[Study]:
    return with_systems(Study.objects.filter(owner_id=owner.pk)).select_related("question_set")


def runs_of(study: Study) -> QuerySet[GenerationRun]:
    return study.runs.select_related("model")


def flagged_answers(study: Study) -> QuerySet[Answer]:
    """Answers in which a model names itself, with their review state."""
    return Answer.objects.filter(run__study=study, self_identifies=True).select_related(
        "question", "run__model"
    )


def answers_of(study: Study) -> QuerySet[Answer]:
    return (
        Answer.objects.filter(run__study=study)
        .select_related("question", "run__model")
        .order_by("question__position", "run__model__name")
    )


def pairs_not_shown(study: Study) -> dict[int, str]:
    """question id -> "held" or "withdrawn" for the pairs annotators do not see (with many
    systems a question has several pairs: "withdrawn" where any of them is, else "held")."""
    rows = study.pairs.exclude(status=Pair.Status.SHOWN).order_by("status")  # held, withdrawn
    return dict(rows.values_list("question_id", "status"))


@dataclass(frozen=True)
class AnnotatorRow:
    """One annotator of a study: progress (withdrawn pairs count nowhere), the time of their
    last vote or change, whether they have voted at all, and their invite's state."""

    user: User
    done: int
    total: int
    voted: int  # votes in this study, withdrawn pairs included
    last_activity: datetime | None
    invite: AccountInvite

    @property
    def can_remove(self) -> bool:
        return self.voted == 0


def annotator_rows(study: Study, *, tokens: Mapping[int, str] | None = None) -> list[AnnotatorRow]:
    """The study's annotators by name, in two queries besides the invites."""
    users = list(study.annotators.order_by("username"))
    shown = ~Q(pair__status=Pair.Status.WITHDRAWN)
    stats: dict[int, dict[str, Any]] = {
        row["annotator_id"]: dict(row)
        for row in Assignment.objects.filter(pair__study=study)
        .values("annotator_id")
        .annotate(
            total=Count("pk", filter=shown),
            done=Count("vote", filter=shown),
            voted=Count("vote"),
            last=Max("vote__updated_at"),
        )
    }
    invites = accounts_with_invites(users=users, tokens=tokens)
    rows = []
    for user, invite in zip(users, invites, strict=True):
        row = stats.get(user.pk, {})
        rows.append(
            AnnotatorRow(
                user=user,
                done=row.get("done", 0),
                total=row.get("total", 0),
                voted=row.get("voted", 0),
                last_activity=row.get("last"),
                invite=invite,
            )
        )
    return rows


def invite_goes_with_removal(study: Study, user: User) -> bool:
    """Whether removing ``user`` from ``study`` withdraws their unused invite: an account
    made for this study alone (no password yet, no other study)."""
    return not user.has_usable_password() and not (
        user.annotated_studies.exclude(pk=study.pk).exists()
    )


def removal_effects(study: Study, user: User) -> dict[str, Any]:
    """What removing ``user`` from ``study`` would do: their votes here (removal is refused
    when there are any), the unjudged pairs that go, and whether their unused invite link
    stops working (:func:`invite_goes_with_removal`)."""
    counts = Assignment.objects.filter(pair__study=study, annotator=user).aggregate(
        votes=Count("vote"), unjudged=Count("pk", filter=Q(vote__isnull=True))
    )
    return {**counts, "link_withdrawn": invite_goes_with_removal(study, user)}


def generation_summary(study: Study) -> list[tuple[str, object]]:
    """The study's generation settings as (label, value) for the page, in the page's
    language (numbers are localised by the template)."""
    g = study.generation
    yes_no = {True: _("yes"), False: _("no")}
    rows: list[tuple[str, object]] = [
        (_("max new tokens"), g.get("max_new_tokens")),
        (_("min new tokens"), g.get("min_new_tokens", 0)),
        (_("temperature"), g.get("temperature", 0.0)),
        (_("top-p"), g.get("top_p", 1.0)),
        (_("seed"), g.get("seed", study.seed)),
        (_("chat template"), yes_no.get(bool(g.get("use_chat_template", True)))),
        (_("batch size"), g.get("batch_size")),
    ]
    if g.get("system_prompt"):
        rows.append((_("system prompt"), g["system_prompt"]))
    return rows
