"""Studies in the admin: read-only. Sides, order and the plan's salt come from the plan
(``sbs.studies.design``); an edit here would break the blinding or the balance."""

from django.contrib import admin

from sbs.core.admin import JOB_FIELDS, ReadOnlyAdmin
from sbs.studies.models import (
    Answer,
    Assignment,
    FormSubmission,
    GenerationRun,
    Pair,
    Study,
    StudySystem,
)


@admin.register(Study)
class StudyAdmin(ReadOnlyAdmin):
    list_display = ("name", "owner", "status", "model_a", "model_b", "question_set", "created_at")
    list_filter = ("status",)
    search_fields = ("name",)
    exclude = ("plan_salt",)


@admin.register(StudySystem)
class StudySystemAdmin(ReadOnlyAdmin):
    """A study's third and later systems (the first two are its model A and B)."""

    list_display = ("study", "position", "model")


@admin.register(GenerationRun)
class GenerationRunAdmin(ReadOnlyAdmin):
    list_display = ("study", "model", "done_count", "total_count", *JOB_FIELDS)
    list_filter = ("status",)


@admin.register(Answer)
class AnswerAdmin(ReadOnlyAdmin):
    list_display = ("run", "question", "new_tokens", "stop_reason", "self_identifies", "excluded")
    list_filter = ("self_identifies", "excluded", "reviewed")


@admin.register(Pair)
class PairAdmin(ReadOnlyAdmin):
    list_display = ("study", "question", "model_x", "model_y", "status", "regenerations")
    list_filter = ("status",)


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ("pair", "annotator", "order", "repeat_of")


@admin.register(FormSubmission)
class FormSubmissionAdmin(ReadOnlyAdmin):
    """Spent form tokens (a reload or a double click is sent where the first POST went)."""

    list_display = ("user", "result_url", "created_at")
