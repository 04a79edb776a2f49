from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from notifications import services
from notifications.models import Notification

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Notification]
else:  # generic to the type checker only (django-stubs): at run time ModelAdmin takes no parameter
    _ModelAdmin = admin.ModelAdmin


@admin.register(Notification)
class NotificationAdmin(_ModelAdmin):
    """Read-only: rows are written by the planner and the delivery tasks; a failed one is retried with the action
    (audited, like the API's retry)."""

    list_display = ["id", "participant", "recipient_kind", "channel", "template", "due_at", "status", "attempts"]
    list_filter = ["status", "channel", "template"]
    search_fields = ["participant__participant_id", "key"]
    readonly_fields = [f.name for f in Notification._meta.fields]
    actions = ["retry_failed"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Notification | None = None) -> bool:
        return False

    @admin.action(description="Retry the selected failed messages")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        done = 0
        for row in queryset.filter(status=Notification.Status.FAILED):
            services.notification_retry(notification=row, by=request.user, reason="retried from the admin")
            done += 1
        self.message_user(request, f"{done} message(s) queued again.", messages.SUCCESS)
