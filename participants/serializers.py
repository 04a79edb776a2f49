"""Input and output shapes for the participants API. No logic here: services decide, serializers describe."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from participants import access
from participants.models import (
    Arm,
    ConsentDocument,
    ContactDetails,
    EligibilityCriterion,
    Participant,
    Site,
    StaffMembership,
    Study,
    validate_time_zone,
)
from trialsite.fields import OffsetDateTimeField
from trialsite.roles import Role

PHONE = r"^\+?[0-9 ()\-]{5,40}$"
PHONE_MESSAGE = "Enter a phone number: digits, spaces, + ( ) -."
# PostgreSQL's integer column: a larger number is a 400, never a database error.
MAX_INT = 2**31 - 1


def _time_zone(value: str) -> str:
    if value:
        try:
            validate_time_zone(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages[0]) from None
    return value


def _code_field(**kwargs: Any) -> serializers.RegexField:
    return serializers.RegexField(
        r"^[A-Z][A-Z0-9]{1,9}$",
        max_length=10,
        error_messages={"invalid": "Use 2-10 capital letters or digits, starting with a letter."},
        **kwargs,
    )


class ContactInput(serializers.Serializer[Any]):
    full_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.RegexField(PHONE, required=False, allow_blank=True, error_messages={"invalid": PHONE_MESSAGE})
    preferred_channel = serializers.ChoiceField(choices=ContactDetails.Channel.choices, required=False)
    time_zone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    language = serializers.ChoiceField(choices=[code for code, _ in settings.LANGUAGES], required=False)

    def validate_time_zone(self, value: str) -> str:
        return _time_zone(value)


class ParticipantCreateInput(serializers.Serializer[Any]):
    study = serializers.CharField(max_length=10)
    site = serializers.CharField(max_length=10)
    stratum = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    contact = ContactInput(required=False)


class ParticipantUpdateInput(serializers.Serializer[Any]):
    stratum = serializers.CharField(max_length=40, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=Participant.Status.choices, required=False)
    contact = ContactInput(required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class EligibilityInput(serializers.Serializer[Any]):
    answers = serializers.DictField(child=serializers.BooleanField(), allow_empty=True)
    override = serializers.BooleanField(required=False, allow_null=True, default=None)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ConsentInput(serializers.Serializer[Any]):
    version = serializers.CharField(max_length=20)
    signed_at = OffsetDateTimeField()
    obtained_by = serializers.CharField(max_length=150, required=False, help_text="Username; defaults to you.")


class RandomizeInput(serializers.Serializer[Any]):
    stratum = serializers.CharField(max_length=40, required=False, allow_blank=True)


class WithdrawInput(serializers.Serializer[Any]):
    level = serializers.ChoiceField(choices=Participant.WithdrawalLevel.choices)
    reason = serializers.CharField(max_length=2000)
    date = serializers.DateField()


class ContactOutput(serializers.ModelSerializer[ContactDetails]):
    class Meta:
        model = ContactDetails
        fields = ["full_name", "email", "phone", "preferred_channel", "time_zone", "language"]


class ParticipantOutput(serializers.Serializer[Any]):
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

    def get_allocated(self, obj: Participant) -> bool:
        return obj.randomized_at is not None


class HistoryOutput(serializers.Serializer[Any]):
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


class UnblindInput(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000)


class UnblindingApprovalOutput(serializers.Serializer[Any]):
    approved_by = serializers.CharField(source="approved_by.username")
    approved_at = serializers.DateTimeField()
    as_investigator = serializers.BooleanField()
    as_second_approver = serializers.BooleanField()


class UnblindOutput(serializers.Serializer[Any]):
    code = serializers.CharField(source="study.code")
    unblinded = serializers.BooleanField()
    awaiting = serializers.CharField(
        allow_null=True, help_text="Who may give the missing approval; null once unblinded"
    )
    detail = serializers.SerializerMethodField()
    approvals = UnblindingApprovalOutput(many=True, help_text="The standing approvals (withdrawn ones are not listed)")

    def get_detail(self, state: Any) -> str:
        if state.unblinded:
            return f"study {state.study.code} is unblinded"
        if state.approvals:
            return f"awaiting second approval by {state.awaiting}"
        return f"awaiting approvals by {state.awaiting}"


# --- configuration (administrators) ----------------------------------------------------------------------------------


class StudyOutput(serializers.Serializer[Study]):
    code = serializers.CharField()
    title = serializers.CharField()
    protocol_reference = serializers.CharField()
    protocol_code = serializers.CharField()
    target_enrollment = serializers.IntegerField()
    blinded = serializers.BooleanField()
    unblinded = serializers.BooleanField()
    medical_monitor_name = serializers.CharField()
    # Blank when the study names no medical monitor: text, not an address format.
    medical_monitor_email = serializers.CharField()
    hides_safety_from_raters = serializers.BooleanField()
    start_date = serializers.DateField(allow_null=True)
    arms = serializers.SerializerMethodField()

    def get_arms(self, obj: Study) -> list[dict[str, Any]]:
        return [{"code": arm.code, "label": arm.label} for arm in obj.arms.all()]


class SiteOutput(serializers.Serializer[Site]):
    """``roles`` are the requesting user's roles at the site."""

    code = serializers.CharField()
    name = serializers.CharField()
    time_zone = serializers.CharField()
    studies = serializers.SerializerMethodField()
    roles = serializers.SerializerMethodField()

    def get_studies(self, obj: Site) -> list[str]:
        return [study.code for study in obj.studies.all()]

    def get_roles(self, obj: Site) -> list[str]:
        return sorted(access.roles_at(self.context["request"].user, obj.id))


class _RefuseFields:
    """Names fields a caller may not set here, instead of silently ignoring them."""

    refused: dict[str, str] = {}
    initial_data: Any

    def _refuse(self, attrs: dict[str, Any]) -> dict[str, Any]:
        sent = self.initial_data if isinstance(self.initial_data, Mapping) else {}
        errors = {name: [message] for name, message in self.refused.items() if name in sent}
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class StudyCreateInput(serializers.Serializer[Any]):
    code = _code_field()
    title = serializers.CharField(max_length=200)
    protocol_reference = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    protocol_code = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    target_enrollment = serializers.IntegerField(min_value=0, max_value=MAX_INT, required=False, default=0)
    blinded = serializers.BooleanField(required=False, default=False)
    start_date = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="No clinical date before it is accepted."
    )


class StudyUpdateInput(_RefuseFields, serializers.Serializer[Any]):
    """Every field is optional; a change needs a reason. ``code`` and ``unblinded`` are refused by name."""

    refused = {
        "code": "a study's code never changes (participant ids carry it)",
        "unblinded": "unblinding is its own action: POST /api/v1/studies/{code}/unblind/",
    }
    title = serializers.CharField(max_length=200, required=False)
    protocol_reference = serializers.CharField(max_length=200, required=False, allow_blank=True)
    protocol_code = serializers.CharField(max_length=40, required=False, allow_blank=True)
    target_enrollment = serializers.IntegerField(min_value=0, max_value=MAX_INT, required=False)
    blinded = serializers.BooleanField(required=False)
    medical_monitor_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    medical_monitor_email = serializers.EmailField(required=False, allow_blank=True)
    safety_hidden_from_raters = serializers.BooleanField(required=False)
    start_date = serializers.DateField(required=False, help_text="No clinical date before it is accepted.")
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return self._refuse(attrs)


class SiteCreateInput(serializers.Serializer[Any]):
    code = _code_field()
    name = serializers.CharField(max_length=200)
    time_zone = serializers.CharField(max_length=64, help_text="IANA time zone, e.g. America/Los_Angeles")
    contact_email = serializers.EmailField(required=False, allow_blank=True, default="")
    contact_phone = serializers.RegexField(
        PHONE, required=False, allow_blank=True, default="", error_messages={"invalid": PHONE_MESSAGE}
    )
    studies = serializers.ListField(
        child=serializers.CharField(max_length=10), required=False, default=list, max_length=100
    )

    def validate_time_zone(self, value: str) -> str:
        return _time_zone(value)


class SiteUpdateInput(_RefuseFields, serializers.Serializer[Any]):
    """Every field is optional; a change needs a reason. ``studies`` is the full list (superusers only)."""

    refused = {"code": "a site's code never changes (participant ids carry it)"}
    name = serializers.CharField(max_length=200, required=False)
    time_zone = serializers.CharField(max_length=64, required=False)
    contact_email = serializers.EmailField(required=False, allow_blank=True)
    contact_phone = serializers.RegexField(
        PHONE, required=False, allow_blank=True, error_messages={"invalid": PHONE_MESSAGE}
    )
    studies = serializers.ListField(child=serializers.CharField(max_length=10), required=False, max_length=100)
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    def validate_time_zone(self, value: str) -> str:
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return _time_zone(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return self._refuse(attrs)


class ArmInput(serializers.ModelSerializer[Arm]):
    # Fields from the model (a field named ``label`` cannot be declared on a serializer class: Field has one).
    class Meta:
        model = Arm
        fields = ["code", "label"]


class ArmOutput(serializers.ModelSerializer[Arm]):
    class Meta:
        model = Arm
        fields = ["code", "label"]
        read_only_fields = fields


# Described by a pattern, not an enum: spectacular would hoist an enum for a second field named "kind" into a
# component and rename the visit kinds' published KindEnum.
@extend_schema_field({"type": "string", "pattern": "^(inclusion|exclusion)$", "description": "inclusion or exclusion"})
class CriterionKindField(serializers.ChoiceField):
    pass


class CriterionInput(serializers.Serializer[Any]):
    code = serializers.RegexField(
        r"^[A-Za-z][A-Za-z0-9_]{0,29}$",
        max_length=30,
        error_messages={"invalid": "Use up to 30 letters, digits or _, starting with a letter (e.g. INC_AGE)."},
    )
    kind = CriterionKindField(choices=EligibilityCriterion.Kind.choices)
    text = serializers.CharField(max_length=2000)
    order = serializers.IntegerField(
        min_value=0, max_value=MAX_INT, required=False, help_text="Defaults to after the last criterion."
    )


class CriterionOutput(serializers.Serializer[EligibilityCriterion]):
    id = serializers.IntegerField()
    code = serializers.CharField()
    kind = serializers.CharField()
    text = serializers.CharField()
    order = serializers.IntegerField()
    retired_at = serializers.DateTimeField(allow_null=True)


class CriterionRetireInput(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000)


class MembershipRevokeInput(serializers.Serializer[Any]):
    """Read from the query string: a DELETE has no body in the schema."""

    reason = serializers.CharField(max_length=2000)


class ConsentDocumentInput(serializers.Serializer[Any]):
    version = serializers.CharField(max_length=20)
    title = serializers.CharField(max_length=200)


class ConsentDocumentOutput(serializers.Serializer[ConsentDocument]):
    version = serializers.CharField()
    title = serializers.CharField()
    published_at = serializers.DateTimeField()
    published_by = serializers.CharField(source="published_by.username", allow_null=True, default=None)


class MembershipInput(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipOutput(serializers.Serializer[StaffMembership]):
    id = serializers.IntegerField()
    username = serializers.CharField(source="user.username")
    site = serializers.CharField(source="site.code")
    role = serializers.CharField()
    granted_at = serializers.DateTimeField()


# --- demographics ----------------------------------------------------------------------------------------------------


class DemographicsInput(serializers.Serializer[Any]):
    answers = serializers.DictField(
        child=serializers.IntegerField(allow_null=True),
        help_text="Field code -> integer (age in years, or an option's value); null clears a field.",
    )
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class DemographicOptionOutput(serializers.Serializer[Any]):
    value = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]


# ``label`` and ``fields`` are the API's names; the stubs know them as a Field's title and a Serializer's field map
# (DRF's metaclass takes declared fields out of the class body, so neither is shadowed at run time).
class DemographicFieldOutput(serializers.Serializer[Any]):
    code = serializers.CharField()
    type = serializers.ChoiceField(choices=["integer", "choice"])
    label = serializers.CharField()  # type: ignore[assignment]
    unit = serializers.CharField()
    min = serializers.IntegerField(allow_null=True)
    max = serializers.IntegerField(allow_null=True)
    options = DemographicOptionOutput(many=True)


class DemographicFormOutput(serializers.Serializer[Any]):
    code = serializers.CharField()
    version = serializers.CharField()
    title = serializers.CharField()
    fields = DemographicFieldOutput(many=True)  # type: ignore[assignment]


class DemographicsOutput(serializers.Serializer[Any]):
    participant_id = serializers.CharField()
    form = DemographicFormOutput()
    answers = serializers.DictField(child=serializers.IntegerField(allow_null=True))
    form_version = serializers.CharField(allow_null=True, help_text="The version the answers were recorded under.")
    recorded_at = serializers.DateTimeField(allow_null=True)
