"""A visit's life after planning: completed, missed or cancelled (one by one or on withdrawal), and unscheduled visits
added outside the plan. Scheduling a slot is in booking.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from audit.models import AuditEvent
from participants import selectors as participant_selectors
from participants.access import Actor
from participants.models import Participant
from participants.plausible import require_plausible
from scheduling import hooks
from scheduling.lifecycle import OPEN, check_transition
from scheduling.local_time import days_outside, local_date, zone_of
from scheduling.models import ParticipantSchedule, ProtocolDeviation, Visit
from scheduling.protocol import VISIT_KINDS
from scheduling.services._visit_rows import _audit_visit, _lock, _release_bookings
from scheduling.services.deviations import deviation_record
from scheduling.services.generation import _replan_after
from trialsite.errors import InvalidTransition, ServiceError
from trialsite.followups import reconcile_reminders_on_commit

V = Visit.Status


@transaction.atomic
def visit_complete(*, visit: Visit, occurred_at: dt.datetime, by: Actor, reason: str | None = None) -> Visit:
    """Record that the visit took place. Outside its window it is also a deviation; visits anchored on it are
    re-planned from the actual date."""
    visit = _lock(visit)
    check_transition(visit, V.COMPLETED)
    require_plausible(visit.participant, {"occurred_at": occurred_at})
    old_status = visit.status
    visit.status, visit.occurred_at, visit.needs_reschedule = V.COMPLETED, occurred_at, False
    visit.save(update_fields=["status", "occurred_at", "needs_reschedule", "updated_at"])
    _audit_visit(
        visit,
        by=by,
        action=AuditEvent.Action.UPDATE,
        changes=[("status", old_status, V.COMPLETED), ("occurred_at", None, occurred_at)],
        reason=reason,
    )
    _record_if_out_of_window(visit, occurred_at, by=by)
    moved = _replan_after(visit, by=by)
    hooks.visits_changed(participant=visit.participant, visits=[visit, *moved], by=by)
    reconcile_reminders_on_commit(visit.participant_id)
    return visit


def _record_if_out_of_window(visit: Visit, occurred_at: dt.datetime, *, by: Actor) -> None:
    if visit.window_start is None or visit.window_end is None:
        return
    day = local_date(occurred_at, zone_of(visit.participant))
    days = days_outside(day, visit.window_start, visit.window_end)
    if days == 0:
        return
    when = "before" if days < 0 else "after"
    deviation_record(
        participant=visit.participant,
        visit=visit,
        type=ProtocolDeviation.Type.OUT_OF_WINDOW,
        description=(
            f"{visit.code} completed on {day.isoformat()}, {abs(days)} day(s) {when} its window "
            f"{visit.window_start.isoformat()}..{visit.window_end.isoformat()}"
        ),
        days_outside=days,
        by=by,
    )


@transaction.atomic
def visit_miss(*, visit: Visit, reason: str, by: Actor) -> Visit:
    """Record that the visit did not take place. A required protocol visit missed is also a deviation."""
    visit = _lock(visit)
    check_transition(visit, V.MISSED)
    if not (reason and reason.strip()):
        raise ServiceError("a missed visit needs a reason", field_errors={"reason": ["required"]})
    old_status = visit.status
    visit.status, visit.missed_reason, visit.needs_reschedule = V.MISSED, reason, False
    visit.save(update_fields=["status", "missed_reason", "needs_reschedule", "updated_at"])
    _release_bookings(visit)
    _audit_visit(
        visit, by=by, action=AuditEvent.Action.UPDATE, changes=[("status", old_status, V.MISSED)], reason=reason
    )
    if not visit.optional and not visit.unscheduled:
        deviation_record(
            participant=visit.participant,
            visit=visit,
            type=ProtocolDeviation.Type.MISSED_VISIT,
            description=f"{visit.code} missed: {reason}",
            by=by,
        )
    hooks.visits_changed(participant=visit.participant, visits=[visit], by=by)
    reconcile_reminders_on_commit(visit.participant_id)
    return visit


@transaction.atomic
def visit_cancel(*, visit: Visit, reason: str, by: Actor) -> Visit:
    visit = _lock(visit)
    check_transition(visit, V.CANCELLED)
    if not (reason and reason.strip()):
        raise ServiceError("a cancellation needs a reason", field_errors={"reason": ["required"]})
    _cancel(visit, reason=reason, by=by)
    hooks.visits_changed(participant=visit.participant, visits=[visit], by=by)
    return visit


def _cancel(visit: Visit, *, reason: str, by: Actor) -> None:
    old_status = visit.status
    visit.status, visit.cancel_reason, visit.needs_reschedule = V.CANCELLED, reason, False
    visit.save(update_fields=["status", "cancel_reason", "needs_reschedule", "updated_at"])
    _release_bookings(visit)
    _audit_visit(
        visit, by=by, action=AuditEvent.Action.UPDATE, changes=[("status", old_status, V.CANCELLED)], reason=reason
    )
    reconcile_reminders_on_commit(visit.participant_id)


@transaction.atomic
def visits_cancel_for_withdrawal(*, participant: Participant, level: str, by: Actor) -> list[Visit]:
    """stop_follow_up and stop_data_use cancel every visit that has not happened; stop_contact keeps them (follow-up
    continues from records)."""
    if level not in (Participant.WithdrawalLevel.STOP_FOLLOW_UP, Participant.WithdrawalLevel.STOP_DATA_USE):
        return []
    visits = list(
        Visit.objects.select_for_update(of=("self",))
        .select_related("participant__site")
        .filter(participant=participant, status__in=OPEN)
    )
    for visit in visits:
        _cancel(visit, reason=f"participant withdrawn ({level})", by=by)
    hooks.visits_changed(participant=participant, visits=visits, by=by)
    return visits


def _on_withdrawn(*, participant: Participant, level: str, by: Actor, **kwargs: Any) -> None:
    visits_cancel_for_withdrawal(participant=participant, level=level, by=by)


@transaction.atomic
def visit_add_unscheduled(
    *,
    participant: Participant,
    kind: str,
    name: str = "",
    duration_minutes: int = 60,
    by: Actor,
    reason: str | None = None,
) -> Visit:
    """Add a visit outside the protocol plan (no window), numbered UNS1, UNS2, ... per participant."""
    if kind not in VISIT_KINDS:
        raise ServiceError(f"unknown visit kind {kind!r}", field_errors={"kind": [f"one of {', '.join(VISIT_KINDS)}"]})
    # The participant's row is locked so two requests cannot take the same UNS number.
    participant = participant_selectors.participant_locked(participant)
    if participant.status in (Participant.Status.WITHDRAWN, Participant.Status.SCREEN_FAILED):
        raise InvalidTransition(
            f"cannot add a visit for a participant with status '{participant.status}'",
            field_errors={"status": [f"current status is '{participant.status}'"]},
        )
    number = Visit.objects.filter(participant=participant, unscheduled=True).count() + 1
    schedule = ParticipantSchedule.objects.filter(participant=participant).first()
    visit = Visit.objects.create(
        participant=participant,
        site_id=participant.site_id,
        study_id=participant.study_id,
        protocol_version=schedule.protocol_version if schedule else None,
        code=f"UNS{number}",
        name=name or f"Unscheduled {kind.replace('_', ' ')} visit",
        kind=kind,
        unscheduled=True,
        duration_minutes=duration_minutes,
    )
    _audit_visit(
        visit,
        by=by,
        action=AuditEvent.Action.CREATE,
        changes=[("code", None, visit.code), ("kind", None, kind), ("status", None, V.PLANNED)],
        reason=reason,
    )
    hooks.visits_changed(participant=participant, visits=[visit], by=by)
    return visit
