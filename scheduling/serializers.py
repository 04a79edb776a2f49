"""Input and output serializers. Output serializers carry no arm field on purpose (blinding by construction)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from scheduling.models import ProtocolDeviation, Room, Visit
from scheduling.protocol import VISIT_KINDS
from trialsite.fields import OffsetDateTimeField


# Output serializers render one object or (many=True) a queryset of them, hence Serializer[Any].
class VisitOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    participant_id = serializers.CharField(source="participant.participant_id")
    site = serializers.CharField(source="participant.site.code")
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    unscheduled = serializers.BooleanField()
    dosing_number = serializers.IntegerField(allow_null=True)
    optional = serializers.BooleanField()
    instruments = serializers.JSONField()
    duration_minutes = serializers.IntegerField()
    staff_required = serializers.IntegerField()
    overnight = serializers.BooleanField()
    target_date = serializers.DateField(allow_null=True)
    window_start = serializers.DateField(allow_null=True)
    window_end = serializers.DateField(allow_null=True)
    status = serializers.CharField()
    scheduled_start = serializers.DateTimeField(allow_null=True)
    scheduled_end = serializers.DateTimeField(allow_null=True)
    room = serializers.SerializerMethodField()
    staff = serializers.SerializerMethodField()
    occurred_at = serializers.DateTimeField(allow_null=True)
    missed_reason = serializers.CharField()
    cancel_reason = serializers.CharField()
    needs_reschedule = serializers.BooleanField()
    protocol_version = serializers.SerializerMethodField()

    def to_representation(self, instance: Visit) -> dict[str, Any]:
        # A blinded viewer's lens (``scheduling.blinded_view``) gives neutral codes and names and leaves out dates
        # that would tell the arm.
        data = dict(super().to_representation(instance))
        lens = self.context.get("lens")
        return lens.render(instance, data) if lens is not None else data

    def get_room(self, obj: Visit) -> str | None:
        return obj.room.name if obj.room is not None else None

    def get_staff(self, obj: Visit) -> list[str]:
        return [u.username for u in obj.staff.all()]

    def get_protocol_version(self, obj: Visit) -> str | None:
        return str(obj.protocol_version) if obj.protocol_version_id else None


class ScheduledVisitOutput(VisitOutput):
    warnings = serializers.ListField(child=serializers.CharField())


class UnscheduledVisitInput(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=VISIT_KINDS)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    duration_minutes = serializers.IntegerField(min_value=1, max_value=24 * 60, required=False, default=60)
    reason = serializers.CharField(required=False, allow_blank=True)


class ScheduleInput(serializers.Serializer[Any]):
    start = OffsetDateTimeField()
    end = OffsetDateTimeField(required=False, allow_null=True)
    room = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text="Room name at the site.")
    staff = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    reason = serializers.CharField(required=False, allow_blank=True)


class CompleteInput(serializers.Serializer[Any]):
    occurred_at = OffsetDateTimeField()
    reason = serializers.CharField(required=False, allow_blank=True)


class ReasonInput(serializers.Serializer[Any]):
    reason = serializers.CharField()


class DeviationInput(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=ProtocolDeviation.Type.choices)
    description = serializers.CharField()
    visit = serializers.IntegerField(required=False, allow_null=True)


class DeviationOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    participant_id = serializers.CharField(source="participant.participant_id")
    site = serializers.CharField(source="participant.site.code")
    visit = serializers.IntegerField(source="visit_id", allow_null=True)
    visit_code = serializers.SerializerMethodField()
    type = serializers.CharField()
    description = serializers.CharField()
    days_outside = serializers.IntegerField(allow_null=True)
    recorded_at = serializers.DateTimeField()
    recorded_by = serializers.SerializerMethodField()

    def get_visit_code(self, obj: ProtocolDeviation) -> str | None:
        if obj.visit is None:
            return None
        lens = self.context.get("lens")  # a blinded viewer sees the visit's neutral code
        return str(lens.render(obj.visit, {"code": obj.visit.code})["code"]) if lens is not None else obj.visit.code

    def get_recorded_by(self, obj: ProtocolDeviation) -> str | None:
        return obj.recorded_by.username if obj.recorded_by is not None else None


class RoomOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    site = serializers.CharField(source="site.code")
    name = serializers.CharField()
    overnight_capable = serializers.BooleanField()
    active = serializers.BooleanField()
    retired = serializers.SerializerMethodField(help_text="A retired room keeps its bookings and takes no new ones.")
    retired_at = serializers.DateTimeField(allow_null=True)

    def get_retired(self, obj: Room) -> bool:
        return obj.retired_at is not None


class RoomCreateInput(serializers.Serializer[Any]):
    site = serializers.CharField(max_length=10, help_text="Code of the site the room belongs to.")
    name = serializers.CharField(max_length=Room.NAME_MAX_LENGTH)
    overnight_capable = serializers.BooleanField(required=False, default=False)


class RoomUpdateInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=Room.NAME_MAX_LENGTH, required=False)
    overnight_capable = serializers.BooleanField(required=False)
    active = serializers.BooleanField(required=False, help_text="False takes the room out of use for a while.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not {"name", "overnight_capable", "active"} & set(attrs):
            raise serializers.ValidationError("give at least one of name, overnight_capable, active")
        return attrs


class RoomRetireInput(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000, help_text="Why the room is retired (kept in the audit trail).")
