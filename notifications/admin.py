from django.contrib import admin, messages

from notifications import services
from notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Read-only: rows are written by the planner and the delivery tasks; a failed one is retried with the action
    (audited, like the API's retry)."""

    list_display = ["id", "participant", "recipient_kind", "channel", "template", "due_at", "status", "attempts"]
    list_filter = ["status", "channel", "template"]
    search_fields = ["participant__participant_id", "key"]
    readonly_fields = [f.name for f in Notification._meta.fields]
    actions = ["retry_failed"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry the selected failed messages")
    def retry_failed(self, request, queryset):
        done = 0
        for row in queryset.filter(status=Notification.Status.FAILED):
            services.notification_retry(notification=row, by=request.user, reason="retried from the admin")
            done += 1
        self.message_user(request, f"{done} message(s) queued again.", messages.SUCCESS)
