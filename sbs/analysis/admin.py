from django.contrib import admin

from sbs.analysis.models import ReportCache
from sbs.core.admin import JOB_FIELDS, ReadOnlyAdmin


@admin.register(ReportCache)
class ReportCacheAdmin(ReadOnlyAdmin):
    list_display = ("study", *JOB_FIELDS, "n_votes", "seconds", "finished_at")
    list_filter = ("status",)
    exclude = ("report", "plots")
