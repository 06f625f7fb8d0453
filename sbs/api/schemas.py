"""Bodies of the HTTP API (what the OpenAPI schema documents).

Annotator bodies (:class:`AnnotatorStudyOut`, :class:`PairOut`, ...) carry positions,
questions and answer texts only: never a model, a study's name or a side's secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema

from sbs.studies.forms import StudyCreateForm

Choice = Literal["left", "right", "tie", "both_bad"]


class Detail(Schema):
    detail: str


class FieldErrors(Schema):
    detail: str
    errors: dict[str, list[str]] = Field(description="field -> messages ('__all__': the form)")


class LineErrorOut(Schema):
    line: int = Field(description="1-based line of the file; 0: the file as a whole")
    message: str


class FileErrors(Schema):
    detail: str
    errors: list[LineErrorOut]


class MeOut(Schema):
    id: int
    username: str
    researcher: bool


class Ref(Schema):
    id: int
    name: str


# ------------------------------------------------------------------------ question sets


class QuestionSetOut(Schema):
    id: int
    name: str
    language: str
    sha256: str
    questions: int
    created_at: datetime


class QuestionOut(Schema):
    external_id: str
    text: str
    category: str
    reference: str
    position: int


class QuestionSetDetailOut(QuestionSetOut):
    items: list[QuestionOut]


# ------------------------------------------------------------------------------- models


class ModelOut(Schema):
    id: int
    name: str
    kind: str
    architecture: str
    tokenizer_class: str
    total_bytes: int
    sha256: str
    parent: Ref | None
    created_at: datetime


class FactOut(Schema):
    step: str
    label: str
    value: Any


class ModelDetailOut(ModelOut):
    recipe: dict[str, Any]
    facts: list[FactOut]
    children: list[Ref]


class ModelImportOut(Schema):
    id: int
    name: str
    status: str
    error: str
    model: Ref | None = Field(description="the registered model, once the import is done")
    created_at: datetime
    finished_at: datetime | None


class AdaptationOut(Schema):
    id: int
    parent: Ref
    name: str
    status: str
    step: str
    message: str
    progress: float
    error: str
    model: Ref | None = Field(description="the adapted model, once the job is done")
    created_at: datetime
    finished_at: datetime | None


class AdaptIn(Schema):
    name: str
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="the adaptation form's fields (those left out take the form's defaults)",
    )


# ------------------------------------------------------------------------------ studies


def _initial(name: str) -> Any:
    """The default of a study field: the page's form's initial value."""
    return StudyCreateForm.base_fields[name].initial


class StudyCreateIn(Schema):
    """The studies page's form; bounds and checks are the form's."""

    name: str
    question_set: int
    model_a: int = Field(description="the original model (the first system)")
    model_b: int = Field(description="the adapted model (the second system)")
    more_models: list[int] = Field(
        default=[], description="more systems to compare (up to 12 in all), ranked together"
    )
    max_new_tokens: int = _initial("max_new_tokens")
    min_new_tokens: int = _initial("min_new_tokens")
    temperature: float = _initial("temperature")
    seed: int = _initial("seed")
    use_chat_template: bool = _initial("use_chat_template")
    batch_size: int = _initial("batch_size")
    judgments_per_pair: int | None = Field(
        default=None, description="empty: every annotator judges every pair"
    )
    repeat_share: float = _initial("repeat_share")
    pair_budget: int | None = Field(
        default=None,
        description="pairs to judge (a question and two systems each), shared out evenly by "
        "a balanced incomplete design; empty: every pair of systems on every question",
    )


class StudyOut(Schema):
    id: int
    name: str
    status: str
    question_set: Ref
    model_a: Ref
    model_b: Ref
    systems: list[Ref] = Field(description="every system compared, model A and B first")
    generation: dict[str, Any]
    seed: int
    judgments_per_pair: int | None
    repeat_share: float
    pair_budget: int | None
    created_at: datetime


class RunOut(Schema):
    model: Ref
    status: str
    done: int
    total: int
    attempts: int
    device: str
    error: str
    started_at: datetime | None
    finished_at: datetime | None


class AnnotatorOut(Schema):
    id: int
    username: str
    done: int
    total: int
    voted: int
    last_activity: datetime | None
    invite: str = Field(description="password, invited, expired or none")
    invite_expires_at: datetime | None


class ProgressOut(Schema):
    votes: int = Field(description="votes cast on pairs not withdrawn")
    judgments: int = Field(description="judgments planned on pairs not withdrawn")
    annotators: int
    pairs_shown: int
    pairs_held: int
    pairs_withdrawn: int
    flagged_unreviewed: int = Field(description="answers naming a model, awaiting review")


class StudyDetailOut(StudyOut):
    runs: list[RunOut]
    progress: ProgressOut
    annotators: list[AnnotatorOut]


class AnnotatorsIn(Schema):
    existing: list[str] = Field(
        default_factory=list, description="user names of existing annotator accounts"
    )
    names: list[str] = Field(
        default_factory=list, description="names of new annotators: accounts and invite links"
    )


class InviteLinkOut(Schema):
    id: int
    username: str
    link: str


class AnnotatorsAddedOut(Schema):
    added: int
    invites: list[InviteLinkOut] = Field(description="the new accounts' links, shown once")


class RevokedOut(Schema):
    revoked: bool


class RetriedOut(Schema):
    retried: int


class VoteRowOut(Schema):
    """One vote with the models resolved, as the CSV export has it."""

    vote_id: int
    question: str
    category: str
    annotator: str
    left_model: str
    right_model: str
    choice: str
    winner_model: str
    seconds: float | None
    comment: str
    created_at: datetime
    updated_at: datetime
    repeat: bool
    excluded: bool


class ResultsOut(Schema):
    """The report of the current votes: the JSON export's content."""

    manifest: dict[str, Any]
    report: dict[str, Any]


class ResultsPendingOut(Schema):
    state: str = Field(description="stale (an older full report) or preliminary")
    job_status: str
    detail: str
    report: dict[str, Any] = Field(description="what the results page shows meanwhile")
    fresh: dict[str, Any] | None = Field(description="the cheap part for the current votes")


class ExportPendingOut(Schema):
    job_status: str
    detail: str


class ExportFormatOut(Schema):
    key: str
    label: str
    content_type: str
    filename: str = Field(description="what the download is named (a .zip with its manifest)")


# ---------------------------------------------------------------------------- annotators


class AnnotatorStudyOut(Schema):
    id: int
    status: str
    done: int
    total: int


class PairOut(Schema):
    """A pair as the vote screen shows it: by position only."""

    assignment: int
    position: int
    question: str
    left: str
    right: str
    shown: str = Field(description="the signed time it was shown: send it with the vote")


class NextPairOut(Schema):
    study: int
    status: str
    done: int
    total: int
    held: int = Field(description="pairs held for the researcher's review")
    pair: PairOut | None


class VoteIn(Schema):
    assignment: int
    shown: str
    choice: Choice
    comment: str = Field(default="", max_length=5000)


class VoteChangeIn(Schema):
    shown: str
    choice: Choice
    comment: str = Field(default="", max_length=5000)


class VoteOut(Schema):
    assignment: int
    choice: str
    outcome: Literal["recorded", "unchanged", "changed"]


class MyVoteOut(Schema):
    assignment: int
    number: int
    question: str
    choice: str
    choice_label: str
    changes: int


class MyVoteDetailOut(Schema):
    assignment: int
    number: int
    question: str
    left: str
    right: str
    choice: str
    comment: str
    can_change: bool
    shown: str
