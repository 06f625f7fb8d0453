"""The admin's log-in counts failures with the main log-in's throttle (same counters).

The admin stays: it is the only screen that deactivates an account, resets a forgotten
password or puts someone in the researchers group. Its log-in is Django's, given our form.
"""

from django.contrib import admin

from sbs.accounts.forms import ThrottledAdminAuthenticationForm
from sbs.accounts.models import Invite
from sbs.core.admin import ReadOnlyAdmin

admin.site.login_form = ThrottledAdminAuthenticationForm


@admin.register(Invite)
class InviteAdmin(ReadOnlyAdmin):
    """Only digests are stored; issue and re-issue links from the study page."""

    list_display = ("user", "created_by", "created_at", "used_at")
