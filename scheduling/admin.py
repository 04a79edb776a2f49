"""The admin shows scheduling records; it changes none of them. Every change goes through the services, which check
the role and write the audit row (rooms: the /api/v1/rooms/ endpoints; protocols: manage.py load_protocol)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from scheduling.models import ProtocolDeviation, ProtocolVersion, Room, Visit

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Model]
else:  # ModelAdmin is generic only to the type checker
    _ModelAdmin = admin.ModelAdmin


class _ReadOnlyAdmin(_ModelAdmin):
    """Lists and shows (Django's view permission); never adds, changes or deletes."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ProtocolVersion)
class ProtocolVersionAdmin(_ReadOnlyAdmin):
    list_display = ["code", "version", "title", "loaded_at"]
    # Versions are immutable (participants stay on theirs): load new ones with manage.py load_protocol.
    readonly_fields = ["code", "version", "title", "definition", "source", "loaded_at", "loaded_by"]


@admin.register(Room)
class RoomAdmin(_ReadOnlyAdmin):
    list_display = ["name", "site", "overnight_capable", "active", "retired_at"]
    list_filter = ["site", "active"]


@admin.register(Visit)
class VisitAdmin(_ReadOnlyAdmin):
    list_display = ["participant", "code", "kind", "status", "target_date", "scheduled_start"]
    list_filter = ["status", "kind"]


@admin.register(ProtocolDeviation)
class ProtocolDeviationAdmin(_ReadOnlyAdmin):
    list_display = ["participant", "type", "days_outside", "recorded_at"]
    list_filter = ["type"]
