"""Read-only admin views: every write goes through the services (validated and audited)."""

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from assessments.models import Administration, InstrumentVersion, ParticipantLink, Response, SafetyAlert

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:  # ModelAdmin is generic only in the stubs
    _ModelAdmin = admin.ModelAdmin


class ReadOnly(_ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(InstrumentVersion)
class InstrumentVersionAdmin(ReadOnly):
    list_display = ["code", "version", "source", "loaded_at"]


@admin.register(Administration)
class AdministrationAdmin(ReadOnly):
    list_display = ["participant", "visit", "instrument_code", "status", "opens_at", "closes_at"]
    list_filter = ["status", "instrument_code"]


@admin.register(ParticipantLink)
class ParticipantLinkAdmin(ReadOnly):
    list_display = ["id", "participant", "visit", "created_at", "expires_at", "revoked_at"]
    exclude = ["token_hash"]


@admin.register(Response)
class ResponseAdmin(ReadOnly):
    list_display = ["id", "participant", "instrument_code", "instrument_version", "source", "submitted_at"]


@admin.register(SafetyAlert)
class SafetyAlertAdmin(ReadOnly):
    list_display = ["id", "participant", "rule_code", "severity", "created_at", "acknowledged_at", "escalated_at"]
