"""Every write to scheduling: validated, atomic, audited in the same transaction (see docs/protocols.md)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_participant_record, audit_record
from participants.models import AllocationSlot, Participant, Site
from scheduling import engine, hooks
from scheduling.models import Booking, ParticipantSchedule, ProtocolDeviation, ProtocolVersion, Room, Visit
from scheduling.protocol import VISIT_KINDS, ProtocolError, load_protocol_file, parse_protocol, shipped_protocol_paths
from trialsite.errors import Conflict, InvalidTransition, ServiceError
from trialsite.followups import reconcile_reminders_on_commit
from trialsite.roles import Role

V = Visit.Status
OPEN = {V.PLANNED, V.SCHEDULED}
TRANSITIONS: dict[str, set[str]] = {
    V.PLANNED: {V.SCHEDULED, V.COMPLETED, V.MISSED, V.CANCELLED},
    # scheduled -> scheduled is a reschedule (new slot, room or staff).
    V.SCHEDULED: {V.SCHEDULED, V.COMPLETED, V.MISSED, V.CANCELLED},
    V.COMPLETED: set(),
    V.MISSED: set(),
    V.CANCELLED: set(),
}
# An overnight stay keeps the room until this local time on the next morning.
OVERNIGHT_UNTIL = dt.time(9, 0)


def _tz(participant: Participant) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(participant.time_zone)


def local_date(instant: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.date:
    return instant.astimezone(tz).date()


def _audit_visit(visit: Visit, *, by, action: str, changes, reason: str | None = None) -> None:
    audit_participant_record(
        visit.participant, by=by, action=action, entity_type="visit", entity_id=visit.pk, changes=changes, reason=reason
    )


def _check_transition(visit: Visit, new_status: str) -> None:
    if new_status not in TRANSITIONS.get(visit.status, set()):
        raise InvalidTransition(
            f"cannot change visit status from '{visit.status}' to '{new_status}'",
            field_errors={"status": [f"current status is '{visit.status}'; requested '{new_status}'"]},
        )


def _lock(visit: Visit) -> Visit:
    return (
        Visit.objects.select_for_update(of=("self",))
        .select_related("participant__site", "participant__study")
        .get(pk=visit.pk)
    )


# --- protocol versions ----------------------------------------------------------------------------------------------


@transaction.atomic
def protocol_version_load(*, path: str | Path, by=None) -> ProtocolVersion:
    """Validate a protocol file and store it as a new version. Raises ProtocolError (nothing stored) when invalid."""
    protocol = load_protocol_file(path)
    if ProtocolVersion.objects.filter(code=protocol.code, version=protocol.version).exists():
        raise ProtocolError(
            [f"version: {protocol.code} version {protocol.version} is already loaded; bump 'version' to change it"],
            str(path),
        )
    row = ProtocolVersion.objects.create(
        code=protocol.code,
        version=protocol.version,
        title=protocol.title,
        definition=dict(protocol.raw),
        source=Path(path).name,
        loaded_by=by if getattr(by, "pk", None) else None,
    )
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="protocol_version",
        entity_id=row.pk,
        changes=[("code", None, row.code), ("version", None, row.version), ("source", None, row.source)],
    )
    return row


def protocol_version_latest(code: str) -> ProtocolVersion | None:
    """The latest stored version of ``code``. A shipped protocol that is not stored yet is stored on first use, so a
    fresh database generates visits with no manual loading step."""
    row = ProtocolVersion.objects.filter(code=code).order_by("-version").first()
    if row is not None:
        return row
    for path in shipped_protocol_paths():
        if path.stem == code:
            protocol = load_protocol_file(path)
            row, _ = ProtocolVersion.objects.get_or_create(
                code=protocol.code,
                version=protocol.version,
                defaults={"title": protocol.title, "definition": dict(protocol.raw), "source": path.name},
            )
            return row
    return None


def stored_protocol_problems() -> list[str]:
    """Every stored version that no longer validates (e.g. the instrument list changed), as '<code vN>: <problem>'."""
    problems = []
    for row in ProtocolVersion.objects.order_by("code", "version"):
        try:
            parse_protocol(row.definition)
        except ProtocolError as exc:
            problems += [f"{row}: {e}" for e in exc.errors]
    return problems


# --- generation -------------------------------------------------------------------------------------------------------


def _arm_code(participant: Participant) -> str | None:
    slot = AllocationSlot.objects.filter(participant=participant).select_related("arm").first()
    return slot.arm.code if slot else None


@transaction.atomic
def schedule_generate(*, participant: Participant, by) -> list[Visit]:
    """Create the participant's protocol visits for their arm, in a constant number of queries (one bulk insert).

    Called from the randomize hook, inside participant_randomize's transaction: a failure here rolls the
    randomization back, so a randomized participant never lacks a schedule."""
    study = participant.study
    if not study.protocol_code:
        return []
    if ParticipantSchedule.objects.filter(participant=participant).exists():
        return []
    version = protocol_version_latest(study.protocol_code)
    if version is None:
        raise ServiceError(
            f"study {study.code} names protocol {study.protocol_code!r}, which is not loaded",
            field_errors={"protocol": ["load it with manage.py load_protocol"]},
        )
    protocol = version.protocol()
    arm_code = _arm_code(participant)
    if arm_code is None:
        # A single-arm protocol (day0 = enrollment) has one arm whatever the allocation.
        if len(protocol.arms) != 1:
            return []
        arm_code = next(iter(protocol.arms))
    try:
        arm = protocol.arm(arm_code)
    except KeyError as exc:
        raise ServiceError(str(exc), field_errors={"arm": [str(exc)]}) from exc
    tz = _tz(participant)
    schedule = ParticipantSchedule.objects.create(
        participant=participant,
        protocol_version=version,
        enrollment_date=local_date(participant.enrolled_at, tz) if participant.enrolled_at else None,
        randomization_date=local_date(participant.randomized_at, tz) if participant.randomized_at else None,
    )
    plan = engine.plan_visits(arm, schedule.day0_dates())
    numbers = arm.dosing_numbers()
    visits = [
        Visit(
            participant=participant,
            protocol_version=version,
            code=v.code,
            name=v.name,
            kind=v.kind,
            dosing_number=numbers.get(v.code),
            optional=v.optional,
            instruments=[{"code": i.code, "respondent": i.respondent} for i in v.instruments],
            duration_minutes=v.duration_minutes,
            staff_required=v.staff_required,
            overnight=v.overnight,
            target_date=plan[v.code].target,
            window_start=plan[v.code].window_start,
            window_end=plan[v.code].window_end,
        )
        for v in arm.visits
        if v.code in plan
    ]
    created = Visit.objects.bulk_create(visits)
    # One event for the whole plan keeps generation at a constant number of queries; each row's dates are in the
    # visit table and every later change to them is audited per visit.
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="participant_schedule",
        entity_id=schedule.pk,
        changes=[
            ("protocol_version", None, str(version)),
            ("visits", None, [f"{v.code} {v.target_date.isoformat()}" for v in created]),
        ],
    )
    hooks.visits_changed(participant=participant, visits=created, by=by)
    return created


def _on_randomized(*, participant: Participant, by, **kwargs) -> None:
    schedule_generate(participant=participant, by=by)
    reconcile_reminders_on_commit(participant.pk)


def _on_withdrawn(*, participant: Participant, level: str, by, **kwargs) -> None:
    visits_cancel_for_withdrawal(participant=participant, level=level, by=by)


# --- re-planning ------------------------------------------------------------------------------------------------------


def _replan_after(visit: Visit, *, by) -> list[Visit]:
    """Re-plan every not-completed visit that depends on ``visit`` (transitively) from actual dates."""
    participant = visit.participant
    if visit.unscheduled or visit.protocol_version_id is None:
        return []
    schedule = ParticipantSchedule.objects.filter(participant=participant).first()
    arm_code = _arm_code(participant)
    protocol = visit.protocol_version.protocol()
    if schedule is None or (arm_code is None and len(protocol.arms) != 1):
        return []
    arm = protocol.arm(arm_code) if arm_code else next(iter(protocol.arms.values()))
    if not engine.dependents(arm, visit.code):
        return []
    tz = _tz(participant)
    rows = {
        v.code: v
        for v in Visit.objects.select_for_update().filter(participant=participant, unscheduled=False).order_by("id")
    }
    current = {c: engine.PlannedDates(v.target_date, v.window_start, v.window_end) for c, v in rows.items()}
    actual = {c: local_date(v.occurred_at, tz) for c, v in rows.items() if v.status == V.COMPLETED and v.occurred_at}
    # Missed and cancelled visits are history too: their kept target anchors what follows.
    frozen = [c for c, v in rows.items() if v.status not in OPEN]
    after = engine.replan(arm, schedule.day0_dates(), actual, current, frozen)
    moved = []
    for code in engine.changed_visits(current, after):
        row = rows.get(code)
        if row is None or code not in after or row.status not in OPEN:
            continue
        new = after[code]
        changes = [
            (name, getattr(row, name), value)
            for name, value in (
                ("target_date", new.target),
                ("window_start", new.window_start),
                ("window_end", new.window_end),
            )
            if getattr(row, name) != value
        ]
        row.target_date, row.window_start, row.window_end = new.target, new.window_start, new.window_end
        if row.status == V.SCHEDULED and row.scheduled_start is not None:
            slot_day = local_date(row.scheduled_start, tz)
            if not new.contains(slot_day) and not row.needs_reschedule:
                row.needs_reschedule = True
                changes.append(("needs_reschedule", False, True))
        row.participant = participant
        _audit_visit(row, by=by, action=AuditEvent.Action.UPDATE, changes=changes, reason="anchor moved")
        moved.append(row)
    if moved:
        for row in moved:
            row.updated_at = timezone.now()
        Visit.objects.bulk_update(
            moved, ["target_date", "window_start", "window_end", "needs_reschedule", "updated_at"]
        )
        hooks.visits_changed(participant=participant, visits=moved, by=by)
    return moved


# --- lifecycle --------------------------------------------------------------------------------------------------------


def _release_bookings(visit: Visit) -> None:
    # Bookings are reservations of rooms and people, not trial data: freeing them is the point of cancelling.
    Booking.objects.filter(visit=visit).delete()


@transaction.atomic
def visit_complete(*, visit: Visit, occurred_at: dt.datetime, by, reason: str | None = None) -> Visit:
    visit = _lock(visit)
    _check_transition(visit, V.COMPLETED)
    if timezone.is_naive(occurred_at):
        raise ServiceError("occurred_at needs a time zone", field_errors={"occurred_at": ["include a UTC offset"]})
    if occurred_at > timezone.now() + dt.timedelta(minutes=5):
        raise ServiceError(
            "occurred_at lies in the future", field_errors={"occurred_at": ["must not be in the future"]}
        )
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
    day = local_date(occurred_at, _tz(visit.participant))
    if visit.window_start and visit.window_end and not (visit.window_start <= day <= visit.window_end):
        days = (day - visit.window_start).days if day < visit.window_start else (day - visit.window_end).days
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
    hooks.visits_changed(participant=visit.participant, visits=[visit], by=by)
    _replan_after(visit, by=by)
    reconcile_reminders_on_commit(visit.participant_id)
    return visit


@transaction.atomic
def visit_miss(*, visit: Visit, reason: str, by) -> Visit:
    visit = _lock(visit)
    _check_transition(visit, V.MISSED)
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
def visit_cancel(*, visit: Visit, reason: str, by) -> Visit:
    visit = _lock(visit)
    _check_transition(visit, V.CANCELLED)
    if not (reason and reason.strip()):
        raise ServiceError("a cancellation needs a reason", field_errors={"reason": ["required"]})
    _cancel(visit, reason=reason, by=by)
    return visit


def _cancel(visit: Visit, *, reason: str, by) -> None:
    old_status = visit.status
    visit.status, visit.cancel_reason, visit.needs_reschedule = V.CANCELLED, reason, False
    visit.save(update_fields=["status", "cancel_reason", "needs_reschedule", "updated_at"])
    _release_bookings(visit)
    _audit_visit(
        visit, by=by, action=AuditEvent.Action.UPDATE, changes=[("status", old_status, V.CANCELLED)], reason=reason
    )
    hooks.visits_changed(participant=visit.participant, visits=[visit], by=by)
    reconcile_reminders_on_commit(visit.participant_id)


@transaction.atomic
def visits_cancel_for_withdrawal(*, participant: Participant, level: str, by) -> list[Visit]:
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
    return visits


@transaction.atomic
def visit_add_unscheduled(
    *,
    participant: Participant,
    kind: str,
    name: str = "",
    duration_minutes: int = 60,
    by,
    reason: str | None = None,
) -> Visit:
    if kind not in VISIT_KINDS:
        raise ServiceError(f"unknown visit kind {kind!r}", field_errors={"kind": [f"one of {', '.join(VISIT_KINDS)}"]})
    participant = Participant.objects.select_for_update().select_related("site", "study").get(pk=participant.pk)
    if participant.status in (Participant.Status.WITHDRAWN, Participant.Status.SCREEN_FAILED):
        raise InvalidTransition(
            f"cannot add a visit for a participant with status '{participant.status}'",
            field_errors={"status": [f"current status is '{participant.status}'"]},
        )
    number = Visit.objects.filter(participant=participant, unscheduled=True).count() + 1
    schedule = ParticipantSchedule.objects.filter(participant=participant).first()
    visit = Visit.objects.create(
        participant=participant,
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


# --- booking ----------------------------------------------------------------------------------------------------------


def _fmt_span(start: dt.datetime, end: dt.datetime, tz: zoneinfo.ZoneInfo) -> str:
    s, e = start.astimezone(tz), end.astimezone(tz)
    tail = e.strftime("%H:%M") if e.date() == s.date() else e.strftime("%Y-%m-%d %H:%M")
    return f"{s:%Y-%m-%d %H:%M}-{tail}"


def _describe(booking: Booking, label: str, tz: zoneinfo.ZoneInfo) -> str:
    return (
        f"{label} is booked {_fmt_span(booking.starts_at, booking.ends_at, tz)} for "
        f"{booking.visit.participant.participant_id} {booking.visit.code}"
    )


def _staff_users(usernames: Sequence[str], site: Site, *, therapists_only: bool):
    user_model = get_user_model()
    names = list(dict.fromkeys(usernames))
    if len(names) != len(usernames):
        raise ServiceError("staff are listed twice", field_errors={"staff": ["list each person once"]})
    qs = user_model.objects.filter(username__in=names, memberships__site=site, is_active=True)
    if therapists_only:
        qs = qs.filter(memberships__role=Role.THERAPIST)
    found = {u.username: u for u in qs.distinct()}
    missing = [n for n in names if n not in found]
    if missing:
        what = "therapists" if therapists_only else "staff members"
        raise ServiceError(
            f"not {what} at {site.code}: {', '.join(missing)}",
            field_errors={"staff": [f"{n} is not a {what[:-1]} at {site.code}" for n in missing]},
        )
    return [found[n] for n in names]


@transaction.atomic
def visit_schedule(
    *,
    visit: Visit,
    start: dt.datetime,
    end: dt.datetime | None = None,
    room: Room | None = None,
    staff: Sequence[str] = (),
    by,
    reason: str | None = None,
) -> tuple[Visit, list[str]]:
    """Give a visit its slot, room and staff; returns the visit and warnings (e.g. a changed therapist dyad).

    Dosing sessions need ``staff_required`` distinct therapists and a room; an overnight stay keeps the room until
    09:00 local the next morning. A therapist or room already booked at an overlapping time is a 409."""
    visit = _lock(visit)
    _check_transition(visit, V.SCHEDULED)
    participant = visit.participant
    site = participant.site
    site_tz = zoneinfo.ZoneInfo(site.time_zone)
    if timezone.is_naive(start) or (end is not None and timezone.is_naive(end)):
        raise ServiceError("times need a time zone", field_errors={"start": ["include a UTC offset"]})
    end = end or start + dt.timedelta(minutes=visit.duration_minutes)
    if end <= start:
        raise ServiceError("the session must end after it starts", field_errors={"end": ["must be after start"]})
    if room is not None and room.site_id != site.pk:
        raise ServiceError("the room is at another site", field_errors={"room": [f"not a room at {site.code}"]})
    if room is not None and not room.active:
        raise ServiceError("the room is not in use", field_errors={"room": ["inactive room"]})
    is_dosing = visit.kind == "dosing"
    users = _staff_users(staff, site, therapists_only=is_dosing)
    errors: dict[str, list[str]] = {}
    if is_dosing:
        if len(users) != visit.staff_required:
            errors["staff"] = [f"a dosing session needs {visit.staff_required} distinct therapists, got {len(users)}"]
        if room is None:
            errors["room"] = ["a dosing session needs a room"]
        if end - start < dt.timedelta(minutes=visit.duration_minutes):
            errors["end"] = [f"a dosing session lasts {visit.duration_minutes} minutes"]
    if errors:
        raise ServiceError("the dosing session cannot be booked as given", field_errors=errors)

    room_end = end
    if visit.overnight:
        morning = dt.datetime.combine(end.astimezone(site_tz).date() + dt.timedelta(days=1), OVERNIGHT_UNTIL, site_tz)
        room_end = max(end, morning)
    wanted = [Booking(visit=visit, resource=f"user:{u.pk}", user=u, starts_at=start, ends_at=end) for u in users]
    if room is not None:
        wanted.append(Booking(visit=visit, resource=f"room:{room.pk}", room=room, starts_at=start, ends_at=room_end))

    # Friendly check first (names the conflict); the exclusion constraint below settles any race.
    overlap = Q()
    for b in wanted:
        overlap |= Q(resource=b.resource, starts_at__lt=b.ends_at, ends_at__gt=b.starts_at)
    if wanted:
        clash = (
            Booking.objects.filter(overlap)
            .exclude(visit=visit)
            .select_related("visit__participant", "user", "room")
            .order_by("starts_at")
            .first()
        )
        if clash is not None:
            label = f"therapist {clash.user.username}" if clash.user_id else f"room {clash.room.name}"
            message = _describe(clash, label, site_tz)
            raise Conflict(message, field_errors={"room" if clash.room_id else "staff": [message]})

    _release_bookings(visit)
    try:
        with transaction.atomic():
            Booking.objects.bulk_create(wanted)
    except IntegrityError as exc:
        raise Conflict(
            "a therapist or room was booked by someone else at the same moment; reload and try again",
            field_errors={"staff": ["booked concurrently"]},
        ) from exc

    warnings: list[str] = []
    if is_dosing:
        previous = (
            Visit.objects.filter(participant=participant, kind="dosing", status__in=[V.SCHEDULED, V.COMPLETED])
            .exclude(pk=visit.pk)
            .prefetch_related("staff")
            .order_by("scheduled_start")
        )
        mine = {u.username for u in users}
        for other in previous:
            theirs = {u.username for u in other.staff.all()}
            if theirs and theirs != mine:
                warnings.append(
                    f"the therapist dyad differs from {other.code} ({', '.join(sorted(theirs))}); "
                    "changing the dyad within one treatment is allowed but should be rare"
                )

    old = {
        "status": visit.status,
        "scheduled_start": visit.scheduled_start,
        "scheduled_end": visit.scheduled_end,
        "room": visit.room.name if visit.room_id else None,
        "staff": sorted(u.username for u in visit.staff.all()),
    }
    visit.status, visit.scheduled_start, visit.scheduled_end, visit.room = V.SCHEDULED, start, end, room
    visit.needs_reschedule = False
    visit.save(update_fields=["status", "scheduled_start", "scheduled_end", "room", "needs_reschedule", "updated_at"])
    visit.staff.set(users)
    new = {
        "status": V.SCHEDULED,
        "scheduled_start": start,
        "scheduled_end": end,
        "room": room.name if room else None,
        "staff": sorted(u.username for u in users),
    }
    changes = [(k, old[k], new[k]) for k in new if old[k] != new[k]]
    if changes:
        _audit_visit(visit, by=by, action=AuditEvent.Action.UPDATE, changes=changes, reason=reason)
        hooks.visits_changed(participant=participant, visits=[visit], by=by)
    reconcile_reminders_on_commit(visit.participant_id)
    return visit, warnings


# --- rooms and deviations ---------------------------------------------------------------------------------------------


@transaction.atomic
def room_create(*, site: Site, name: str, overnight_capable: bool = False, by) -> Room:
    if Room.objects.filter(site=site, name=name).exists():
        raise ServiceError(f"room {name!r} exists at {site.code}", field_errors={"name": ["already exists"]})
    room = Room.objects.create(site=site, name=name, overnight_capable=overnight_capable)
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="room",
        entity_id=room.pk,
        site_code=site.code,
        changes=[("name", None, name)],
    )
    return room


@transaction.atomic
def deviation_record(
    *,
    participant: Participant,
    type: str,
    description: str,
    by,
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
        recorded_by=by if getattr(by, "pk", None) else None,
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
