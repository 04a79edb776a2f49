"""Read-only admin pages: protocol versions load with manage.py load_protocol; rooms, visits and deviations change
only through the scheduling services, which check the role and write the audit row."""

from django.contrib import admin

from scheduling.models import ProtocolDeviation, ProtocolVersion, Room, Visit
from trialsite.admin import ReadOnlyAdmin, link_to


@admin.register(ProtocolVersion)
class ProtocolVersionAdmin(ReadOnlyAdmin):
    list_display = ["code", "version", "title", "loaded_at"]
    search_fields = ["code", "title"]


@admin.register(Room)
class RoomAdmin(ReadOnlyAdmin):
    list_display = ["name", link_to("site"), "overnight_capable", "active", "retired_at"]
    list_filter = ["site", "active"]
    list_select_related = ["site"]


@admin.register(Visit)
class VisitAdmin(ReadOnlyAdmin):
    list_display = [link_to("participant"), "code", "kind", "status", "target_date", "scheduled_start", link_to("room")]
    list_filter = ["status", "kind"]
    list_select_related = ["participant", "room"]
    search_fields = ["participant__participant_id", "code"]


@admin.register(ProtocolDeviation)
class ProtocolDeviationAdmin(ReadOnlyAdmin):
    list_display = [link_to("participant"), link_to("visit"), "type", "days_outside", "recorded_at"]
    list_filter = ["type"]
    list_select_related = ["participant", "visit"]
    search_fields = ["participant__participant_id"]
