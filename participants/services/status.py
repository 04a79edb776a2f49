"""What every participant service shares: the audit row about a participant and the audited status change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from audit.models import AuditEvent
from audit.services import audit_participant_record
from participants.access import Actor
from participants.models import Participant
from participants.transitions import require_transition

Changes = Iterable[tuple[str, Any, Any]]


def _audit_participant(
    participant: Participant,
    *,
    by: Actor,
    action: str,
    changes: Changes,
    reason: str | None = None,
    sensitivity: str = "",
    entity: tuple[str, Any] | None = None,
) -> None:
    entity_type, entity_id = entity or ("participant", participant.pk)
    audit_participant_record(
        participant,
        by=by,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        changes=changes,
        reason=reason,
        sensitivity=sensitivity,
    )


def _set_status(participant: Participant, new_status: str, *, by: Actor, reason: str | None = None) -> None:
    require_transition(participant, new_status)
    old = participant.status
    participant.status = new_status
    participant.save(update_fields=["status", "updated_at"])
    _audit_participant(
        participant, by=by, action=AuditEvent.Action.TRANSITION, changes=[("status", old, new_status)], reason=reason
    )


def _has_reason(reason: str | None) -> bool:
    return bool(reason and reason.strip())
