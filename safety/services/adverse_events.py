"""Recording adverse events, correcting them with a reason, and appending follow-up entries.

Never deleted: an entry made in error is corrected (and the audit trail keeps every earlier value), or its follow-up
says so. The site's investigators review it separately (``safety.services.reviews``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_participant_record, diff
from participants.access import Actor, acting_user
from participants.models import Participant
from safety.models import SERIOUSNESS_CRITERIA, AdverseEvent, AdverseEventFollowUp
from safety.services._rules import aware, check_values, require_recorder, serious_of, start_clock_if_needed
from scheduling.models import Visit
from trialsite.errors import ServiceError

ENTITY = "adverse_event"
# What a correction may change. The participant never changes (an event entered for the wrong participant is
# corrected to say so and entered again for the right one); the clock and the review fields belong to their services.
CORRECTABLE = (
    "visit",
    "verbatim_term",
    "coded_term_code",
    "coded_term_text",
    "onset_at",
    "resolved_at",
    "severity_grade",
    *SERIOUSNESS_CRITERIA,
    "relatedness_drug",
    "relatedness_therapy",
    "expectedness",
    "action_taken",
    "outcome",
    "aesi_categories",
)


def _check_visit(participant: Participant, visit: Visit | None) -> None:
    if visit is not None and visit.participant_id != participant.pk:
        raise ServiceError("unknown visit", field_errors={"visit": ["not a visit of this participant"]})


def _validate(participant: Participant, values: dict[str, Any], *, now: dt.datetime) -> None:
    errors = check_values(participant, values, now=now)
    if errors:
        raise ServiceError("the adverse event is not valid", field_errors=errors)


@transaction.atomic
def adverse_event_record(
    *,
    participant: Participant,
    verbatim_term: str,
    onset_at: dt.datetime,
    severity_grade: int,
    relatedness_drug: str,
    relatedness_therapy: str,
    expectedness: str,
    action_taken: str,
    outcome: str,
    by: Actor,
    visit: Visit | None = None,
    coded_term_code: str = "",
    coded_term_text: str = "",
    resolved_at: dt.datetime | None = None,
    seriousness: frozenset[str] = frozenset(),
    aesi_categories: list[str] | None = None,
) -> AdverseEvent:
    """Record an adverse event (times as the site's clock shows them when naive). ``seriousness`` names the criteria
    met (``serious_death``, ...); any one makes the event serious. A serious event or an AESI alerts the site's
    investigators once this commits and starts the reporting clock."""
    require_recorder(by, participant)
    _check_visit(participant, visit)
    unknown = sorted(set(seriousness) - set(SERIOUSNESS_CRITERIA))
    if unknown:
        raise ServiceError("unknown seriousness criterion", field_errors={"seriousness": unknown})
    now = timezone.now()
    values: dict[str, Any] = {
        "visit": visit,
        "verbatim_term": verbatim_term.strip(),
        "coded_term_code": coded_term_code.strip(),
        "coded_term_text": coded_term_text.strip(),
        "onset_at": aware(onset_at, participant),
        "resolved_at": aware(resolved_at, participant),
        "severity_grade": severity_grade,
        **{name: name in seriousness for name in SERIOUSNESS_CRITERIA},
        "relatedness_drug": relatedness_drug,
        "relatedness_therapy": relatedness_therapy,
        "expectedness": expectedness,
        "action_taken": action_taken,
        "outcome": outcome,
        "aesi_categories": list(aesi_categories or []),
    }
    _validate(participant, values, now=now)
    event = AdverseEvent.objects.create(
        participant=participant, serious=serious_of(values), recorded_at=now, recorded_by=acting_user(by), **values
    )
    clock = start_clock_if_needed(event, now=now)
    if clock:
        event.save(update_fields=["alert_started_at", "reporting_due_at"])
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type=ENTITY,
        entity_id=event.pk,
        changes=[(name, None, values[name]) for name in values if values[name] not in (None, "", False, [])]
        + [("serious", None, event.serious)]
        + clock,
    )
    return event


@transaction.atomic
def adverse_event_correct(
    *, event: AdverseEvent, reason: str, by: Actor, seriousness: frozenset[str] | None = None, **changes: Any
) -> AdverseEvent:
    """Correct fields of a recorded event, with a reason. The audit trail keeps each old value beside the new one.
    ``seriousness``, when given, is the full set of criteria now met. A correction that makes the event serious or
    of special interest starts the clock and alerts, as an entry would; one that makes it non-serious leaves a
    running clock alone (only a review stops it)."""
    if seriousness is not None:
        unknown = sorted(set(seriousness) - set(SERIOUSNESS_CRITERIA))
        if unknown:
            raise ServiceError("unknown seriousness criterion", field_errors={"seriousness": unknown})
        changes.update({name: name in seriousness for name in SERIOUSNESS_CRITERIA})
    event = (
        AdverseEvent.objects.select_for_update(of=("self",))
        .select_related("participant__site", "participant__study")
        .get(pk=event.pk)
    )
    participant = event.participant
    require_recorder(by, participant)
    refused = sorted(set(changes) - set(CORRECTABLE))
    if refused:
        raise ServiceError(
            "these fields cannot be corrected", field_errors={name: ["not correctable"] for name in refused}
        )
    if not (reason and reason.strip()):
        raise ServiceError("a correction needs a reason", field_errors={"reason": ["required"]})
    if "visit" in changes:
        _check_visit(participant, changes["visit"])
    for name in ("onset_at", "resolved_at"):
        if name in changes:
            changes[name] = aware(changes[name], participant)
    for name in ("verbatim_term", "coded_term_code", "coded_term_text"):
        if name in changes:
            changes[name] = str(changes[name]).strip()
    now = timezone.now()
    values = {name: getattr(event, name) for name in CORRECTABLE} | changes
    _validate(participant, values, now=now)
    found = diff(event, changes)
    if not found:
        raise ServiceError("nothing to correct: every value is already as given", code="unchanged")
    for name, _old, new in found:
        setattr(event, name, new)
    serious = serious_of(values)
    if serious != event.serious:
        found.append(("serious", event.serious, serious))
        event.serious = serious
    clock = start_clock_if_needed(event, now=now)
    event.save(update_fields=sorted({name for name, _o, _n in found} | {name for name, _o, _n in clock}))
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type=ENTITY,
        entity_id=event.pk,
        changes=found + clock,
        reason=reason.strip(),
    )
    return event


@transaction.atomic
def adverse_event_follow_up(
    *,
    event: AdverseEvent,
    note: str,
    by: Actor,
    outcome: str = "",
    resolved_at: dt.datetime | None = None,
) -> AdverseEventFollowUp:
    """Append a follow-up entry. An outcome or resolution it brings becomes the event's (audited as an update whose
    reason names the entry), so the event reads current while the entries keep how it got there."""
    event = (
        AdverseEvent.objects.select_for_update(of=("self",))
        .select_related("participant__site", "participant__study")
        .get(pk=event.pk)
    )
    participant = event.participant
    require_recorder(by, participant)
    if not (note and note.strip()):
        raise ServiceError("a follow-up needs a note", field_errors={"note": ["required"]})
    now = timezone.now()
    resolved = aware(resolved_at, participant)
    updates: dict[str, Any] = {}
    if outcome:
        updates["outcome"] = outcome
    if resolved is not None:
        updates["resolved_at"] = resolved
    if updates:
        values = {name: getattr(event, name) for name in CORRECTABLE} | updates
        _validate(participant, values, now=now)
    entry = AdverseEventFollowUp.objects.create(
        event=event,
        note=note.strip(),
        outcome=outcome,
        resolved_at=resolved,
        recorded_at=now,
        recorded_by=acting_user(by),
    )
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="adverse_event_follow_up",
        entity_id=entry.pk,
        changes=[("event", None, event.pk), ("note", None, entry.note)]
        + [(name, None, value) for name, value in updates.items()],
    )
    found = diff(event, updates)
    if found:
        for name, _old, new in found:
            setattr(event, name, new)
        event.save(update_fields=sorted(name for name, _o, _n in found))
        audit_participant_record(
            participant,
            by=by,
            action=AuditEvent.Action.UPDATE,
            entity_type=ENTITY,
            entity_id=event.pk,
            changes=found,
            reason=f"follow-up {entry.pk}",
        )
    return entry
