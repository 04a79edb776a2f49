"""Input and output shapes of the assessments API. No logic here: services validate and write."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from assessments.definitions import Instrument
from assessments.library import option_label, text_for
from assessments.models import Administration, Response, SafetyAlert
from assessments.selectors import flags_dict, scores_dict
from assessments.text_packs import TextPack
from assessments.texts import HOLD_REASON
from assessments.windows import administration_status


class AnswersField(serializers.DictField):
    """{ITEM_CODE: value}. Values are checked per item by the instrument (type, range, branching), so any JSON value
    is accepted here and refused there with the item named."""

    child = serializers.JSONField(allow_null=True)


class ResponseCreateInput(serializers.Serializer[Any]):
    participant_id = serializers.CharField()
    visit_id = serializers.IntegerField()
    instrument = serializers.CharField()
    answers = AnswersField()


class ResponseCorrectInput(serializers.Serializer[Any]):
    answers = AnswersField()
    reason = serializers.CharField()


class LinkSaveInput(serializers.Serializer[Any]):
    answers = serializers.DictField(child=AnswersField(), help_text="{INSTRUMENT: {ITEM_CODE: value}}")


class OpenInput(serializers.Serializer[Any]):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class AcknowledgeInput(serializers.Serializer[Any]):
    note = serializers.CharField()


class LinkOutput(serializers.Serializer[Any]):
    url = serializers.CharField()
    expires_at = serializers.DateTimeField()


class AdministrationOutput(serializers.ModelSerializer[Administration]):
    instrument = serializers.CharField(source="instrument_code")
    visit_id = serializers.IntegerField()
    status = serializers.SerializerMethodField()
    response_id = serializers.SerializerMethodField()
    held = serializers.SerializerMethodField(
        help_text="True when the questionnaire is not offered to the participant: no text pack holds its wording in "
        "the participant's language (hold_reason says so)."
    )
    hold_reason = serializers.SerializerMethodField()
    text_pack_id = serializers.IntegerField(
        allow_null=True, help_text="The text pack the participant answers under (null: the definition's own wording)."
    )

    class Meta:
        model = Administration
        fields = [
            "id",
            "visit_id",
            "instrument",
            "respondent",
            "status",
            "opens_at",
            "closes_at",
            "response_id",
            "held",
            "hold_reason",
            "text_pack_id",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=Administration.Status.choices))
    def get_status(self, obj: Administration) -> str:
        # "expired" is a fact of the clock, computed when the row is shown (the row itself never changes on a read).
        return administration_status(obj, timezone.now())

    def get_held(self, obj: Administration) -> bool:
        # The ids held are read once for the whole list by the view (selectors.held_administration_ids).
        return obj.pk in self.context.get("held", ())

    @extend_schema_field(serializers.ChoiceField(choices=[HOLD_REASON], allow_null=True))
    def get_hold_reason(self, obj: Administration) -> str | None:
        return HOLD_REASON if self.get_held(obj) else None

    def get_response_id(self, obj: Administration) -> int | None:
        response = getattr(obj, "response", None)
        return response.pk if response is not None else None


class SafetyAlertOutput(serializers.ModelSerializer[SafetyAlert]):
    participant_id = serializers.CharField(source="participant.participant_id")
    site = serializers.CharField(source="participant.site.code")
    response_id = serializers.IntegerField(allow_null=True)
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", default=None)

    class Meta:
        model = SafetyAlert
        fields = [
            "id",
            "participant_id",
            "site",
            "source",
            "source_id",
            "response_id",
            "rule_code",
            "severity",
            "message",
            "details",
            "created_at",
            "notified_at",
            "escalated_at",
            "acknowledged_at",
            "acknowledged_by",
            "acknowledgement_note",
        ]


def render_response(response: Response) -> dict[str, Any]:
    return {
        "id": response.pk,
        "participant_id": response.participant.participant_id,
        "visit_id": response.visit_id,
        "instrument": response.instrument_code,
        "instrument_version": response.instrument_version,
        "source": response.source,
        "submitted_at": serializers.DateTimeField().to_representation(response.submitted_at),
        "answers": response.answers_dict(),
        "scores": scores_dict(response),
        "flags": flags_dict(response),
        "score_details": [
            {
                "code": s.code,
                "kind": s.kind,
                "value": s.text_value or s.value,
                "complete": s.complete,
                "prorated": s.prorated,
                "method": s.method,
                "band": s.band or None,
                "instrument_version": s.instrument_version,
                "scoring_version": s.scoring_version,
            }
            for s in response.scores.all()
        ],
    }


def render_instrument(instrument: Instrument, *, language: str = "en", full: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": instrument.code,
        "version": instrument.version,
        "title": instrument.title,
        "respondent": instrument.respondent,
        "entry_roles": list(instrument.entry_roles),
        "recall_period": instrument.recall_period,
        "languages": list(instrument.languages),
        "item_text_status": instrument.item_text_status,
        "licence": instrument.licence,
        "scales": [
            {
                "code": s.code,
                "label": s.label,
                "method": s.reported_method,
                "items": list(s.items),
                "reversed": sorted(s.reversed),
                "scales": list(s.scales),
                "range": {"min": s.range_min, "max": s.range_max},
                "recommended": s.recommended,
            }
            for s in instrument.scales
        ],
        "flags": [{"code": f.code, "label": f.label} for f in instrument.flags],
        "safety_rules": [dict(r) for r in instrument.safety_rules],
    }
    if full:
        data["items"] = [
            {
                "code": it.code,
                "text": text_for(it, language),
                "required": it.required,
                "show_if": {"item": it.show_if.item, "equals": it.show_if.equals} if it.show_if else None,
                "options": [{"value": o.value, "label": option_label(o, language)} for o in it.options],
            }
            for it in instrument.items
        ]
    return data


def render_items(instrument: Instrument, wording: TextPack) -> list[dict[str, Any]]:
    """An instrument's items in a text pack's wording, for the participant link's JSON flow."""
    return [
        {
            "code": it.code,
            "text": wording.item_text(it.code),
            "required": it.required,
            "show_if": {"item": it.show_if.item, "equals": it.show_if.equals} if it.show_if else None,
            "options": [{"value": o.value, "label": wording.option_label(it.code, o.value)} for o in it.options],
        }
        for it in instrument.items
    ]
