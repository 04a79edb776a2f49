"""Read-only admin pages: every write goes through the assessments services (validated and audited)."""

from django.contrib import admin

from assessments.models import (
    Administration,
    InstrumentText,
    InstrumentVersion,
    ParticipantLink,
    Response,
    SafetyAlert,
)
from trialsite.admin import ReadOnlyAdmin, link_to


@admin.register(InstrumentVersion)
class InstrumentVersionAdmin(ReadOnlyAdmin):
    list_display = ["code", "version", "source", "loaded_at"]
    search_fields = ["code"]


@admin.register(InstrumentText)
class InstrumentTextAdmin(ReadOnlyAdmin):
    list_display = ["instrument_code", "instrument_version", "language", "version", "placeholder", "loaded_at"]
    search_fields = ["instrument_code"]


@admin.register(Administration)
class AdministrationAdmin(ReadOnlyAdmin):
    list_display = [link_to("participant"), link_to("visit"), "instrument_code", "status", "opens_at", "closes_at"]
    list_filter = ["status", "instrument_code"]
    list_select_related = ["participant", "visit"]
    search_fields = ["participant__participant_id"]


@admin.register(ParticipantLink)
class ParticipantLinkAdmin(ReadOnlyAdmin):
    list_display = ["id", link_to("participant"), link_to("visit"), "created_at", "expires_at", "revoked_at"]
    list_select_related = ["participant", "visit"]
    search_fields = ["participant__participant_id"]
    exclude = ["token_hash"]


@admin.register(Response)
class ResponseAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        link_to("participant"),
        link_to("visit"),
        "instrument_code",
        "instrument_version",
        "source",
        "submitted_at",
    ]
    list_select_related = ["participant", "visit"]
    search_fields = ["participant__participant_id"]


@admin.register(SafetyAlert)
class SafetyAlertAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        link_to("participant"),
        link_to("response"),
        "rule_code",
        "severity",
        "created_at",
        "acknowledged_at",
        "escalated_at",
    ]
    list_select_related = ["participant", "response"]
    search_fields = ["participant__participant_id"]
