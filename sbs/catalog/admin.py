from django.contrib import admin

from sbs.catalog.models import AdaptationJob, ImportedAnswer, ModelEntry, ModelImportJob
from sbs.core.admin import JOB_FIELDS, ReadOnlyAdmin


@admin.register(ModelEntry)
class ModelEntryAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "architecture", "parent", "ready", "total_bytes", "sha256")
    list_filter = ("kind", "ready")
    search_fields = ("name", "sha256")


@admin.register(AdaptationJob)
class AdaptationJobAdmin(ReadOnlyAdmin):
    list_display = ("name", "method", "parent", "step", *JOB_FIELDS, "created_at")
    list_filter = ("status",)


@admin.register(ModelImportJob)
class ModelImportJobAdmin(ReadOnlyAdmin):
    list_display = ("name", "server_path", *JOB_FIELDS, "created_at")
    list_filter = ("status",)


@admin.register(ImportedAnswer)
class ImportedAnswerAdmin(ReadOnlyAdmin):
    list_display = ("system", "question", "new_tokens", "seconds", "created_at")
    search_fields = ("system__name", "question__external_id")
