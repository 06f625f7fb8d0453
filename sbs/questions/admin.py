from django.contrib import admin

from sbs.core.admin import ReadOnlyAdmin
from sbs.questions.models import Question, QuestionSet


@admin.register(QuestionSet)
class QuestionSetAdmin(ReadOnlyAdmin):
    list_display = ("name", "language", "sha256", "created_by", "created_at")
    search_fields = ("name",)


@admin.register(Question)
class QuestionAdmin(ReadOnlyAdmin):
    list_display = ("question_set", "external_id", "category", "position")
    list_filter = ("question_set", "category")
    search_fields = ("external_id", "text")
