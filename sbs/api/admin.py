from django.contrib import admin

from sbs.api.models import ApiToken
from sbs.core.admin import ReadOnlyAdmin


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Only digests are stored; people create and revoke their tokens on their own page."""

    list_display = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
