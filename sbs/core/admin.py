"""A read-only admin for rows whose writes must go through a service (the lifecycle, the
plan, the fences): the admin lists and shows them, and changes nothing."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


JOB_FIELDS = ("status", "attempts", "worker", "device", "fence", "lease_expires_at", "progress")
