"""Input and output serializers of the safety API. No logic here: the services validate the event as a whole;
these check types and shapes, so that each bad field answers 400 with its own message."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from rest_framework import serializers

from safety.models import SERIOUSNESS_CRITERIA, AdverseEvent, AdverseEventFollowUp, AdverseEventReview, Relatedness


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
    label = serializers.CharField()
    participants = serializers.IntegerField(source="counts.participants")
    events = serializers.IntegerField(source="counts.events")
    events_grade_3_or_more = serializers.IntegerField(source="counts.events_grade_3_or_more")
    serious_events = serializers.IntegerField(source="counts.serious_events")


class ArmSummaryOutput(serializers.Serializer[Any]):
    arm = serializers.CharField(source="code")
    label = serializers.CharField()
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
