"""Input and output serializers of the safety API. No logic here: the services validate the event as a whole;
these check types and shapes, so that each bad field answers 400 with its own message."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

from rest_framework import serializers

from safety.models import (
    SERIOUSNESS_CRITERIA,
    AdverseEvent,
    AdverseEventFollowUp,
    AdverseEventReview,
    ConcomitantMedication,
    MedicationOverride,
    Relatedness,
    TreatmentGuess,
)


class SiteLocalDateTimeField(serializers.DateTimeField):
    """A date-time as the site's clock shows it ("2026-03-02T14:30"), or with an offset. A value without an offset is
    kept naive here: the service reads it in the participant's site zone (the only zone that knows it)."""

    def enforce_timezone(self, value: dt.datetime) -> dt.datetime:
        return value


_CRITERIA = [(name, name.removeprefix("serious_").replace("_", " ")) for name in SERIOUSNESS_CRITERIA]


class AdverseEventInput(serializers.Serializer[Any]):
    participant_id = serializers.CharField(max_length=40)
    visit = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    verbatim_term = serializers.CharField(max_length=300)
    coded_term_code = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    coded_term_text = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    onset_at = SiteLocalDateTimeField()
    resolved_at = SiteLocalDateTimeField(required=False, allow_null=True)
    severity_grade = serializers.IntegerField(min_value=1, max_value=5)
    seriousness = serializers.MultipleChoiceField(choices=_CRITERIA, required=False, default=set)
    relatedness_drug = serializers.ChoiceField(choices=Relatedness.choices)
    relatedness_therapy = serializers.ChoiceField(choices=Relatedness.choices)
    expectedness = serializers.ChoiceField(choices=AdverseEvent.Expectedness.choices)
    action_taken = serializers.ChoiceField(choices=AdverseEvent.ActionTaken.choices)
    outcome = serializers.ChoiceField(choices=AdverseEvent.Outcome.choices)
    aesi_categories = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, default=list, max_length=20
    )


class AdverseEventCorrectInput(serializers.Serializer[Any]):
    """Only the fields given change; a reason is required. Seriousness is given as the full set of criteria met."""

    reason = serializers.CharField(max_length=2000)
    visit = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    verbatim_term = serializers.CharField(max_length=300, required=False)
    coded_term_code = serializers.CharField(max_length=20, required=False, allow_blank=True)
    coded_term_text = serializers.CharField(max_length=200, required=False, allow_blank=True)
    onset_at = SiteLocalDateTimeField(required=False)
    resolved_at = SiteLocalDateTimeField(required=False, allow_null=True)
    severity_grade = serializers.IntegerField(min_value=1, max_value=5, required=False)
    seriousness = serializers.MultipleChoiceField(choices=_CRITERIA, required=False)
    relatedness_drug = serializers.ChoiceField(choices=Relatedness.choices, required=False)
    relatedness_therapy = serializers.ChoiceField(choices=Relatedness.choices, required=False)
    expectedness = serializers.ChoiceField(choices=AdverseEvent.Expectedness.choices, required=False)
    action_taken = serializers.ChoiceField(choices=AdverseEvent.ActionTaken.choices, required=False)
    outcome = serializers.ChoiceField(choices=AdverseEvent.Outcome.choices, required=False)
    aesi_categories = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=20)


class FollowUpInput(serializers.Serializer[Any]):
    note = serializers.CharField(max_length=5000)
    outcome = serializers.ChoiceField(choices=AdverseEvent.Outcome.choices, required=False, default="")
    resolved_at = SiteLocalDateTimeField(required=False, allow_null=True, default=None)


class ReviewInput(serializers.Serializer[Any]):
    causality_drug = serializers.ChoiceField(choices=Relatedness.choices)
    causality_therapy = serializers.ChoiceField(choices=Relatedness.choices)
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class FollowUpOutput(serializers.Serializer[AdverseEventFollowUp]):
    id = serializers.IntegerField()
    note = serializers.CharField()
    outcome = serializers.CharField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    recorded_at = serializers.DateTimeField()
    recorded_by = serializers.CharField(source="recorded_by.username", allow_null=True, default=None)


class ReviewOutput(serializers.Serializer[AdverseEventReview]):
    id = serializers.IntegerField()
    causality_drug = serializers.CharField()
    causality_therapy = serializers.CharField()
    note = serializers.CharField()
    reviewed_at = serializers.DateTimeField()
    reviewed_by = serializers.CharField(source="reviewed_by.username")


class AdverseEventOutput(serializers.Serializer[AdverseEvent]):
    """One event as a list shows it. Times are UTC; ``onset_local`` is the site's clock. No arm, ever."""

    id = serializers.IntegerField()
    participant_id = serializers.CharField(source="participant.participant_id")
    site = serializers.CharField(source="participant.site.code")
    study = serializers.CharField(source="participant.study.code")
    visit = serializers.IntegerField(source="visit_id", allow_null=True)
    visit_code = serializers.CharField(source="visit.code", allow_null=True, default=None)
    verbatim_term = serializers.CharField()
    coded_term_code = serializers.CharField()
    coded_term_text = serializers.CharField()
    onset_at = serializers.DateTimeField()
    onset_local = serializers.SerializerMethodField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    severity_grade = serializers.IntegerField()
    serious = serializers.BooleanField()
    seriousness = serializers.SerializerMethodField()
    relatedness_drug = serializers.CharField()
    relatedness_therapy = serializers.CharField()
    expectedness = serializers.CharField()
    action_taken = serializers.CharField()
    outcome = serializers.CharField()
    aesi_categories = serializers.ListField(child=serializers.CharField())
    recorded_at = serializers.DateTimeField()
    reporting_due_at = serializers.DateTimeField(allow_null=True)
    escalated_at = serializers.DateTimeField(allow_null=True)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    follow_up_count = serializers.IntegerField()
    review_count = serializers.IntegerField()

    def get_onset_local(self, obj: AdverseEvent) -> str:
        return obj.onset_at.astimezone(zoneinfo.ZoneInfo(obj.participant.site.time_zone)).isoformat()

    def get_seriousness(self, obj: AdverseEvent) -> list[str]:
        return [name for name in SERIOUSNESS_CRITERIA if getattr(obj, name)]


class AdverseEventDetailOutput(AdverseEventOutput):
    recorded_by = serializers.CharField(source="recorded_by.username", allow_null=True, default=None)
    follow_ups = FollowUpOutput(many=True)
    reviews = ReviewOutput(many=True)


class SummaryCountsOutput(serializers.Serializer[Any]):
    category = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named label (the stubs see Field.label)
    participants = serializers.IntegerField(source="counts.participants")
    events = serializers.IntegerField(source="counts.events")
    events_grade_3_or_more = serializers.IntegerField(source="counts.events_grade_3_or_more")
    serious_events = serializers.IntegerField(source="counts.serious_events")


class ArmSummaryOutput(serializers.Serializer[Any]):
    arm = serializers.CharField(source="code")
    label = serializers.CharField()  # type: ignore[assignment]  # a field named label (the stubs see Field.label)
    randomized = serializers.IntegerField()
    rows = SummaryCountsOutput(many=True)


class SummaryOutput(serializers.Serializer[Any]):
    """The pooled rows always; ``arms`` only in the body of a user who may see the allocation (absent otherwise)."""

    study = serializers.CharField(source="study.code")
    by_arm = serializers.BooleanField()
    pooled = SummaryCountsOutput(many=True)
    arms = ArmSummaryOutput(many=True, required=False)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        if instance.arms is None:
            data.pop("arms", None)
        return data


# --- treatment guesses ---


class GuessInput(serializers.Serializer[Any]):
    """The study's arm codes are checked by the service (they differ by study): ``guess`` is one of them or
    "dont_know"; ``confidence`` is on the 0-100 scale."""

    participant_id = serializers.CharField(max_length=40)
    visit = serializers.IntegerField(min_value=1)
    respondent = serializers.ChoiceField(choices=TreatmentGuess.Respondent.choices)
    guess = serializers.CharField(max_length=30)
    confidence = serializers.IntegerField(min_value=0, max_value=TreatmentGuess.CONFIDENCE_MAX)


class GuessCorrectInput(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000)
    guess = serializers.CharField(max_length=30, required=False)
    confidence = serializers.IntegerField(min_value=0, max_value=TreatmentGuess.CONFIDENCE_MAX, required=False)


class GuessReceiptOutput(serializers.Serializer[TreatmentGuess]):
    """What a respondent who may not read guesses back (an independent rater) gets for an entry: that it was
    recorded, and where; not the answer, not the confidence."""

    id = serializers.IntegerField()
    participant_id = serializers.CharField(source="participant.participant_id")
    site = serializers.CharField(source="participant.site.code")
    visit = serializers.IntegerField(source="visit_id")
    visit_code = serializers.CharField(source="visit.code")
    respondent = serializers.CharField()
    recorded_at = serializers.DateTimeField()
    corrected_at = serializers.DateTimeField(allow_null=True)


class GuessOutput(GuessReceiptOutput):
    """A guess as staff who may read it see it. Never the participant's arm, nor whether the guess was right."""

    study = serializers.CharField(source="participant.study.code")
    guess = serializers.CharField()
    confidence = serializers.IntegerField()
    recorded_by = serializers.CharField(source="recorded_by.username", allow_null=True, default=None)


class MedicationInput(serializers.Serializer[Any]):
    participant_id = serializers.CharField(max_length=40)
    name = serializers.CharField(max_length=200)
    medication_class = serializers.CharField(max_length=40)
    dose_amount = serializers.DecimalField(
        max_digits=10, decimal_places=3, required=False, allow_null=True, default=None, min_value=Decimal("0.001")
    )
    dose_unit = serializers.ChoiceField(
        choices=ConcomitantMedication.DoseUnit.choices, required=False, allow_blank=True, default=""
    )
    dose_text = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    frequency = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    route = serializers.ChoiceField(
        choices=ConcomitantMedication.Route.choices, required=False, allow_blank=True, default=""
    )
    indication = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    start_date = serializers.DateField()
    stop_date = serializers.DateField(required=False, allow_null=True, default=None)
    taper_note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class MedicationCorrectInput(serializers.Serializer[Any]):
    """Only the fields given change; a reason is required."""

    reason = serializers.CharField(max_length=2000)
    name = serializers.CharField(max_length=200, required=False)
    medication_class = serializers.CharField(max_length=40, required=False)
    dose_amount = serializers.DecimalField(
        max_digits=10, decimal_places=3, required=False, allow_null=True, min_value=Decimal("0.001")
    )
    dose_unit = serializers.ChoiceField(
        choices=ConcomitantMedication.DoseUnit.choices, required=False, allow_blank=True
    )
    dose_text = serializers.CharField(max_length=100, required=False, allow_blank=True)
    frequency = serializers.CharField(max_length=100, required=False, allow_blank=True)
    route = serializers.ChoiceField(choices=ConcomitantMedication.Route.choices, required=False, allow_blank=True)
    indication = serializers.CharField(max_length=300, required=False, allow_blank=True)
    start_date = serializers.DateField(required=False)
    stop_date = serializers.DateField(required=False, allow_null=True)
    taper_note = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class MedicationStopInput(serializers.Serializer[Any]):
    stop_date = serializers.DateField()
    taper_note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class MedicationOutput(serializers.Serializer[ConcomitantMedication]):
    """One medication. No arm, ever."""

    id = serializers.IntegerField()
    participant_id = serializers.CharField(source="participant.participant_id")
    site = serializers.CharField(source="participant.site.code")
    study = serializers.CharField(source="participant.study.code")
    name = serializers.CharField()
    medication_class = serializers.CharField()
    dose_amount = serializers.DecimalField(max_digits=10, decimal_places=3, allow_null=True)
    dose_unit = serializers.CharField()
    dose_text = serializers.CharField()
    frequency = serializers.CharField()
    route = serializers.CharField()
    indication = serializers.CharField()
    start_date = serializers.DateField()
    stop_date = serializers.DateField(allow_null=True)
    ongoing = serializers.BooleanField()
    taper_note = serializers.CharField()
    recorded_at = serializers.DateTimeField()
    recorded_by = serializers.CharField(source="recorded_by.username", allow_null=True, default=None)


class MedicationOverrideInput(serializers.Serializer[Any]):
    visit = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(max_length=2000)


class MedicationOverrideOutput(serializers.Serializer[MedicationOverride]):
    id = serializers.IntegerField()
    participant_id = serializers.CharField(source="participant.participant_id")
    site = serializers.CharField(source="participant.site.code")
    visit = serializers.IntegerField(source="visit_id")
    visit_code = serializers.CharField(source="visit.code")
    reason = serializers.CharField()
    recorded_at = serializers.DateTimeField()
    recorded_by = serializers.CharField(source="recorded_by.username")


# --- dosing sessions ------------------------------------------------------------------------------------------------


class PresentPersonSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200)
    role = serializers.CharField(max_length=100)


class DosingSessionInput(serializers.Serializer[Any]):
    visit = serializers.IntegerField(min_value=1)
    kit_identifier = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
    started_at = SiteLocalDateTimeField(required=False, allow_null=True, default=None)
    present_staff = serializers.ListField(
        child=serializers.CharField(max_length=150), required=False, default=list, max_length=20
    )
    present_others = PresentPersonSerializer(many=True, required=False, default=list)


class DosingSessionRecordInput(serializers.Serializer[Any]):
    """Details of the session; only the fields given change. A value already recorded changes only with a reason."""

    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    kit_identifier = serializers.CharField(max_length=60, required=False, allow_blank=True)
    started_at = SiteLocalDateTimeField(required=False, allow_null=True)
    ended_at = SiteLocalDateTimeField(required=False, allow_null=True)
    present_staff = serializers.ListField(child=serializers.CharField(max_length=150), required=False, max_length=20)
    present_others = PresentPersonSerializer(many=True, required=False)


class DosesInput(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    initial_dose_mg = serializers.DecimalField(max_digits=6, decimal_places=2, required=False, allow_null=True)
    initial_dose_at = SiteLocalDateTimeField(required=False, allow_null=True)
    supplemental_dose_mg = serializers.DecimalField(max_digits=6, decimal_places=2, required=False, allow_null=True)
    supplemental_dose_at = SiteLocalDateTimeField(required=False, allow_null=True)


class VitalSignInput(serializers.Serializer[Any]):
    timepoint_code = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    measured_at = SiteLocalDateTimeField()
    systolic_bp = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0, max_value=999)
    diastolic_bp = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0, max_value=999)
    heart_rate = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0, max_value=999)
    temperature_c = serializers.DecimalField(
        max_digits=4, decimal_places=1, required=False, allow_null=True, default=None
    )
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class VitalSignCorrectInput(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000)
    timepoint_code = serializers.CharField(max_length=20, required=False, allow_blank=True)
    measured_at = SiteLocalDateTimeField(required=False)
    systolic_bp = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=999)
    diastolic_bp = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=999)
    heart_rate = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=999)
    temperature_c = serializers.DecimalField(max_digits=4, decimal_places=1, required=False, allow_null=True)
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class DosingCloseInput(serializers.Serializer[Any]):
    ended_at = SiteLocalDateTimeField(required=False, allow_null=True, default=None)
    missing_timepoints_reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class VitalSignOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    timepoint_code = serializers.CharField()
    measured_at = serializers.DateTimeField()
    systolic_bp = serializers.IntegerField(allow_null=True)
    diastolic_bp = serializers.IntegerField(allow_null=True)
    heart_rate = serializers.IntegerField(allow_null=True)
    temperature_c = serializers.DecimalField(max_digits=4, decimal_places=1, allow_null=True, coerce_to_string=False)
    note = serializers.CharField()
    recorded_at = serializers.DateTimeField()
    recorded_by = serializers.CharField(source="recorded_by.username", allow_null=True, default=None)


class DosingSessionOutput(serializers.Serializer[Any]):
    """One session as a list shows it. Times are UTC. No arm, ever (a dose is recorded, never which arm it was)."""

    id = serializers.IntegerField()
    participant_id = serializers.CharField(source="participant.participant_id")
    site = serializers.CharField(source="participant.site.code")
    study = serializers.CharField(source="participant.study.code")
    visit = serializers.IntegerField(source="visit_id")
    visit_code = serializers.CharField(source="visit.code")
    kit_identifier = serializers.CharField()
    initial_dose_mg = serializers.DecimalField(max_digits=6, decimal_places=2, allow_null=True, coerce_to_string=False)
    initial_dose_at = serializers.DateTimeField(allow_null=True)
    supplemental_dose_mg = serializers.DecimalField(
        max_digits=6, decimal_places=2, allow_null=True, coerce_to_string=False
    )
    supplemental_dose_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    recorded_at = serializers.DateTimeField()
    vital_sign_count = serializers.IntegerField()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        """Doses are withheld (null, ``doses_hidden``) from a role that is always blinded at the session's site: in a
        placebo-controlled study a dose can reveal the allocation (the exports treat it as the arm)."""
        data = dict(super().to_representation(instance))
        hidden = instance.participant.site_id in self.context.get("dose_hidden_sites", ())
        if hidden:
            data.update({name: None for name in DOSE_OUTPUT_FIELDS})
        data["doses_hidden"] = hidden
        return data


DOSE_OUTPUT_FIELDS = ("initial_dose_mg", "supplemental_dose_mg", "supplemental_dose_at")


def _timepoint(point: Any) -> dict[str, Any] | None:
    return None if point is None else {"code": point.code, "label": point.label, "minutes": point.minutes}


def dosing_detail(view: Any, *, dose_hidden_sites: frozenset[int] | set[int] = frozenset()) -> dict[str, Any]:
    """The detail body of a session (``safety.selectors.DosingView``): the list row, who was present, the doses, the
    grid by timepoint (declared ones first, each with its vital signs or null), the missing timepoints, the
    declared thresholds and the alerts its vital signs raised."""
    session = view.session
    declaration = view.declaration
    return {
        **DosingSessionOutput(session, context={"dose_hidden_sites": dose_hidden_sites}).data,
        "present_staff": [u.username for u in session.present_staff.all()],
        "present_others": session.present_others,
        "recorded_by": session.recorded_by.username if session.recorded_by else None,
        "closed_by": session.closed_by.username if session.closed_by else None,
        "missing_timepoints_reason": session.missing_timepoints_reason,
        "grid": [
            {
                "timepoint": _timepoint(row.timepoint),
                "vital_sign": VitalSignOutput(row.vital).data if row.vital is not None else None,
            }
            for row in view.grid
        ],
        "missing_timepoints": list(view.missing),
        "thresholds": [
            {"code": r.code, "measure": r.measure, "comparison": r.comparison, "value": r.value, "severity": r.severity}
            for r in (declaration.thresholds if declaration else ())
        ],
        "declarations_illustrative": declaration.illustrative if declaration else None,
        "alerts": [
            {
                "id": a.pk,
                "vital_sign": a.source_id,
                "rule_code": a.rule_code,
                "severity": a.severity,
                "message": a.message,
                "created_at": serializers.DateTimeField().to_representation(a.created_at),
                "acknowledged_at": (
                    serializers.DateTimeField().to_representation(a.acknowledged_at) if a.acknowledged_at else None
                ),
            }
            for a in view.alerts
        ],
    }
