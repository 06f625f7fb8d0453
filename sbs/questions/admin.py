from django.contrib import admin

from sbs.core.admin import JOB_FIELDS, ReadOnlyAdmin
from sbs.questions.models import (
    Benchmark,
    BenchmarkItem,
    BenchmarkResult,
    BenchmarkRun,
    Question,
    QuestionSet,
)


@admin.register(QuestionSet)
class QuestionSetAdmin(ReadOnlyAdmin):
    list_display = ("name", "language", "sha256", "created_by", "created_at")
    search_fields = ("name",)


@admin.register(Question)
class QuestionAdmin(ReadOnlyAdmin):
    list_display = ("question_set", "external_id", "category", "position")
    list_filter = ("question_set", "category")
    search_fields = ("external_id", "text")


@admin.register(Benchmark)
class BenchmarkAdmin(ReadOnlyAdmin):
    list_display = ("name", "language", "source", "license", "sha256", "created_at")
    search_fields = ("name",)


@admin.register(BenchmarkItem)
class BenchmarkItemAdmin(ReadOnlyAdmin):
    list_display = ("benchmark", "external_id", "category", "answer", "position")
    list_filter = ("benchmark", "category")
    search_fields = ("external_id", "question")


@admin.register(BenchmarkRun)
class BenchmarkRunAdmin(ReadOnlyAdmin):
    list_display = ("benchmark", "model", "prompt_format", *JOB_FIELDS, "done_count")
    list_filter = ("status", "prompt_format", "benchmark")


@admin.register(BenchmarkResult)
class BenchmarkResultAdmin(ReadOnlyAdmin):
    list_display = ("run", "item", "predicted", "predicted_norm", "correct", "correct_norm")
    list_filter = ("run",)
