"""Reading the audit trail, with what a viewer may not see redacted."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from audit.models import AuditEvent

# Entity types whose rows are safety records (adverse events, dosing sessions, vital signs, medications, treatment
# guesses). An app registers its own (``register_safety_entity_types``, from its AppConfig.ready), so audit imports no
# domain app. A viewer from whom the study hides safety data (a blinded rater) gets none of these rows in a history:
# their number and order would tell of doses and events.
_SAFETY_ENTITY_TYPES: set[str] = set()


def register_safety_entity_types(*entity_types: str) -> None:
    _SAFETY_ENTITY_TYPES.update(entity_types)


def safety_entity_types() -> frozenset[str]:
    return frozenset(_SAFETY_ENTITY_TYPES)


def _visible(
    query: QuerySet[AuditEvent], *, can_see_allocation: bool, can_see_safety: bool, hidden: Q | None = None
) -> QuerySet[AuditEvent]:
    if hidden is not None:
        # Rows another app names as not for this viewer (a blinded viewer: records of visits the schedule hides).
        query = query.exclude(hidden)
    if not can_see_allocation:
        # Blinded viewers do not get allocation rows at all, not even redacted: their order and count must not
        # hint at anything either. That the participant was randomized shows in the status transition.
        query = query.exclude(sensitivity=AuditEvent.Sensitivity.ALLOCATION)
    if not can_see_safety and _SAFETY_ENTITY_TYPES:
        query = query.exclude(entity_type__in=sorted(_SAFETY_ENTITY_TYPES))
    return query


def participant_history(
    participant_id: str,
    *,
    can_see_allocation: bool,
    can_see_contact: bool,
    can_see_safety: bool = True,
    hidden: Q | None = None,
) -> list[AuditEvent]:
    redacted: set[str] = set()
    if not can_see_allocation:
        redacted.add(AuditEvent.Sensitivity.ALLOCATION)
    if not can_see_contact:
        redacted.add(AuditEvent.Sensitivity.CONTACT)
    query = AuditEvent.objects.filter(participant_id=participant_id).order_by("id")
    events = list(_visible(query, can_see_allocation=can_see_allocation, can_see_safety=can_see_safety, hidden=hidden))
    for event in events:
        event.redacted = event.sensitivity in redacted
        if event.redacted:
            event.old_value = event.new_value = None
    return events


# --- reads for the dashboard (overview) ---


def status_transitions_to(status: str) -> QuerySet[AuditEvent]:
    """The audit rows recording a participant's status change to ``status``: the record of what happened to a
    participant, kept when a later change (a withdrawal) overwrites the status. Unordered, for use as a subquery
    (filter it by ``participant_id``, the pseudonymous id)."""
    return AuditEvent.objects.filter(
        action=AuditEvent.Action.TRANSITION, entity_type="participant", field="status", new_value=status
    )


# --- reads for the dashboard (actions) ---


def participant_history_page(
    participant_id: str,
    *,
    can_see_allocation: bool,
    can_see_contact: bool,
    offset: int,
    limit: int,
    can_see_safety: bool = True,
    hidden: Q | None = None,
) -> tuple[int, list[AuditEvent]]:
    """One page of the participant's history, newest first, and the number of events in all: two queries whatever
    the length of the history. Redacted as :func:`participant_history` (allocation rows left out for a blinded
    viewer, so neither the count nor the page boundaries hint at them; safety rows left out for a viewer the study
    hides safety data from)."""
    query = _visible(
        AuditEvent.objects.filter(participant_id=participant_id),
        can_see_allocation=can_see_allocation,
        can_see_safety=can_see_safety,
        hidden=hidden,
    )
    total = query.count()
    events = list(query.order_by("-id")[offset : offset + limit])
    for event in events:
        event.redacted = not can_see_contact and event.sensitivity == AuditEvent.Sensitivity.CONTACT
        if event.redacted:
            event.old_value = event.new_value = None
    return total, events


def record_corrections(entity_type: str, entity_id: int) -> list[AuditEvent]:
    """The audited changes to one record after it was made (each with its old value, new value and reason), oldest
    first: the history a record's page shows beside its own appended entries. One query."""
    return list(
        AuditEvent.objects.filter(entity_type=entity_type, entity_id=str(entity_id), action=AuditEvent.Action.UPDATE)
        .select_related("actor")
        .order_by("id")
    )
