from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from notifications import services
from notifications.models import Notification
from trialsite.admin import ReadOnlyAdmin, link_to


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """Read-only: rows are written by the planner and the delivery tasks; a failed one is retried with the action
    (audited, like the API's retry)."""

    list_display = [
        "id",
        link_to("participant"),
        "recipient_kind",
        "channel",
        "template",
        "due_at",
        "status",
        "attempts",
    ]
    list_filter = ["status", "channel", "template"]
    list_select_related = ["participant"]
    search_fields = ["participant__participant_id", "key"]
    actions = ["retry_failed"]

    @admin.action(description="Retry the selected failed messages")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        done = 0
        for row in queryset.filter(status=Notification.Status.FAILED):
            services.notification_retry(notification=row, by=request.user, reason="retried from the admin")
            done += 1
        self.message_user(request, f"{done} message(s) queued again.", messages.SUCCESS)
