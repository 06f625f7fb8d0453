from django.contrib import admin

from sbs.analysis.models import ReportCache
from sbs.core.admin import ReadOnlyAdmin


@admin.register(ReportCache)
class ReportCacheAdmin(ReadOnlyAdmin):
    list_display = ("study", "status", "n_votes", "seconds", "finished_at")
    list_filter = ("status",)
    exclude = ("report", "plots")
