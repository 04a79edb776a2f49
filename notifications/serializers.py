from __future__ import annotations

from rest_framework import serializers

from notifications.models import Notification


class NotificationOutput(serializers.ModelSerializer[Notification]):
    """No address and no message text: the outbox row says who and when, the contact details stay where they are."""

    participant_id = serializers.CharField(source="participant.participant_id")
    site = serializers.CharField(source="participant.site.code")
    recipient = serializers.SerializerMethodField()
    # Plain strings: participants' preferred_channel already names the email/sms choice set in the schema.
    channel = serializers.CharField()

    class Meta:
        model = Notification
        fields = [
            "id",
            "participant_id",
            "site",
            "recipient_kind",
            "recipient",
            "channel",
            "template",
            "language",
            "key",
            "nominal_at",
            "due_at",
            "status",
            "attempts",
            "last_error",
            "cancel_reason",
            "provider_message_id",
            "claimed_at",
            "sent_at",
            "created_at",
        ]

    def get_recipient(self, obj: Notification) -> str:
        return obj.recipient_user.username if obj.recipient_user is not None else obj.participant.participant_id


class RetryInput(serializers.Serializer[dict[str, str]]):
    reason = serializers.CharField(required=False, allow_blank=True)
