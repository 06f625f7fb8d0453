from django.contrib import admin

from sbs.core.admin import ReadOnlyAdmin
from sbs.voting.models import Vote, VoteRevision


@admin.register(Vote)
class VoteAdmin(ReadOnlyAdmin):
    list_display = ("assignment", "choice", "seconds_on_page", "created_at", "updated_at")
    list_filter = ("choice",)


@admin.register(VoteRevision)
class VoteRevisionAdmin(ReadOnlyAdmin):
    list_display = ("vote", "choice", "replaced_at")
