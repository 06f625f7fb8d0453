from django.contrib import admin

from sbs.catalog.models import AdaptationJob, ModelEntry, ModelImportJob
from sbs.core.admin import JOB_FIELDS, ReadOnlyAdmin


@admin.register(ModelEntry)
class ModelEntryAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "architecture", "parent", "ready", "total_bytes", "sha256")
    list_filter = ("kind", "ready")
    search_fields = ("name", "sha256")


@admin.register(AdaptationJob)
class AdaptationJobAdmin(ReadOnlyAdmin):
    list_display = ("name", "parent", "step", *JOB_FIELDS, "created_at")
    list_filter = ("status",)


@admin.register(ModelImportJob)
class ModelImportJobAdmin(ReadOnlyAdmin):
    list_display = ("name", "server_path", *JOB_FIELDS, "created_at")
    list_filter = ("status",)
