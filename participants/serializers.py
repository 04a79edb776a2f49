"""Input and output shapes for the participants API. No logic here: services decide, serializers describe."""

from django.conf import settings
from rest_framework import serializers

from participants.models import ContactDetails, Participant


class ContactInput(serializers.Serializer):
    full_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.RegexField(
        r"^\+?[0-9 ()\-]{5,40}$",
        required=False,
        allow_blank=True,
        error_messages={"invalid": "Enter a phone number: digits, spaces, + ( ) -."},
    )
    preferred_channel = serializers.ChoiceField(choices=ContactDetails.Channel.choices, required=False)
    time_zone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    language = serializers.ChoiceField(choices=[code for code, _ in settings.LANGUAGES], required=False)

    def validate_time_zone(self, value):
        from participants.models import validate_time_zone

        if value:
            try:
                validate_time_zone(value)
            except Exception as exc:
                raise serializers.ValidationError(exc.messages[0]) from None
        return value


class ParticipantCreateInput(serializers.Serializer):
    study = serializers.CharField(max_length=10)
    site = serializers.CharField(max_length=10)
    stratum = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    contact = ContactInput(required=False)


class ParticipantUpdateInput(serializers.Serializer):
    stratum = serializers.CharField(max_length=40, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=Participant.Status.choices, required=False)
    contact = ContactInput(required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class EligibilityInput(serializers.Serializer):
    answers = serializers.DictField(child=serializers.BooleanField(), allow_empty=True)
    override = serializers.BooleanField(required=False, allow_null=True, default=None)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ConsentInput(serializers.Serializer):
    version = serializers.CharField(max_length=20)
    signed_at = serializers.DateTimeField()
    obtained_by = serializers.CharField(max_length=150, required=False, help_text="Username; defaults to you.")


class RandomizeInput(serializers.Serializer):
    stratum = serializers.CharField(max_length=40, required=False, allow_blank=True)


class WithdrawInput(serializers.Serializer):
    level = serializers.ChoiceField(choices=Participant.WithdrawalLevel.choices)
    reason = serializers.CharField(max_length=2000)
    date = serializers.DateField()


class ContactOutput(serializers.ModelSerializer):
    class Meta:
        model = ContactDetails
        fields = ["full_name", "email", "phone", "preferred_channel", "time_zone", "language"]


class ParticipantOutput(serializers.Serializer):
    """``arm`` is added by the view only for roles allowed to see it; it is never a key otherwise."""

    participant_id = serializers.CharField()
    study = serializers.CharField(source="study.code")
    site = serializers.CharField(source="site.code")
    status = serializers.CharField()
    stratum = serializers.CharField()
    eligibility_verdict = serializers.BooleanField(allow_null=True)
    eligibility_override = serializers.BooleanField(allow_null=True)
    needs_reconsent = serializers.BooleanField()
    enrolled_at = serializers.DateTimeField(allow_null=True)
    randomized_at = serializers.DateTimeField(allow_null=True)
    allocated = serializers.SerializerMethodField()
    withdrawal_level = serializers.CharField()
    withdrawal_date = serializers.DateField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_allocated(self, obj) -> bool:
        return obj.randomized_at is not None


class HistoryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_username")
    action = serializers.CharField()
    entity_type = serializers.CharField()
    entity_id = serializers.CharField()
    field = serializers.CharField()
    old_value = serializers.JSONField(allow_null=True)
    new_value = serializers.JSONField(allow_null=True)
    reason = serializers.CharField()
    redacted = serializers.BooleanField(default=False)
