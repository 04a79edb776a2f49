from django.contrib import admin

from scheduling.models import ProtocolDeviation, ProtocolVersion, Room, Visit


@admin.register(ProtocolVersion)
class ProtocolVersionAdmin(admin.ModelAdmin):
    list_display = ["code", "version", "title", "loaded_at"]
    # Versions are immutable (participants stay on theirs): load new ones with manage.py load_protocol.
    readonly_fields = ["code", "version", "title", "definition", "source", "loaded_at", "loaded_by"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["name", "site", "overnight_capable", "active"]
    list_filter = ["site", "active"]


@admin.register(Visit)
class VisitAdmin(admin.ModelAdmin):
    # Read-only: every change to a visit goes through the services so it is audited.
    list_display = ["participant", "code", "kind", "status", "target_date", "scheduled_start"]
    list_filter = ["status", "kind"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ProtocolDeviation)
class ProtocolDeviationAdmin(admin.ModelAdmin):
    list_display = ["participant", "type", "days_outside", "recorded_at"]
    list_filter = ["type"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
