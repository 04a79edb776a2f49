"""Protocol deviations: recorded by staff or by the visit services (a visit out of window, a missed visit)."""

from __future__ import annotations

from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_participant_record
from participants.access import Actor
from participants.models import Participant
from scheduling.models import ProtocolDeviation, Visit
from scheduling.services._actors import _user_or_none
from trialsite.errors import ServiceError


@transaction.atomic
def deviation_record(
    *,
    participant: Participant,
    type: str,
    description: str,
    by: Actor,
    visit: Visit | None = None,
    days_outside: int | None = None,
) -> ProtocolDeviation:
    if type not in ProtocolDeviation.Type.values:
        raise ServiceError(
            f"unknown deviation type {type!r}", field_errors={"type": [f"one of {', '.join(ProtocolDeviation.Type)}"]}
        )
    if not (description and description.strip()):
        raise ServiceError("a deviation needs a description", field_errors={"description": ["required"]})
    if visit is not None and visit.participant_id != participant.pk:
        raise ServiceError(
            "the visit belongs to another participant", field_errors={"visit": ["not this participant's"]}
        )
    deviation = ProtocolDeviation.objects.create(
        participant=participant,
        visit=visit,
        type=type,
        description=description,
        days_outside=days_outside,
        recorded_by=_user_or_none(by),
    )
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="protocol_deviation",
        entity_id=deviation.pk,
        changes=[("type", None, type), ("description", None, description)]
        + ([("days_outside", None, days_outside)] if days_outside is not None else []),
        reason=description,
    )
    return deviation
