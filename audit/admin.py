from django.contrib import admin

from audit.models import AuditEvent
from trialsite.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit trail is append-only (a database trigger refuses UPDATE and DELETE); the admin only shows it."""

    list_display = ["id", "occurred_at", "actor_username", "action", "entity_type", "participant_id", "field"]
    list_filter = ["action", "entity_type"]
    search_fields = ["participant_id", "actor_username"]
