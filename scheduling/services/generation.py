"""Generating a participant's protocol visits, and re-planning them when an anchor visit happens."""

from __future__ import annotations

import zoneinfo
from collections.abc import Collection, Mapping
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_participant_record
from participants import selectors as participant_selectors
from participants.access import Actor
from participants.models import Participant
from scheduling import engine, hooks
from scheduling.lifecycle import OPEN
from scheduling.local_time import local_date, zone_of
from scheduling.models import ParticipantSchedule, ProtocolVersion, Visit
from scheduling.protocol import Arm, Protocol, blinded_schedule
from scheduling.services._visit_rows import _audit_visit
from scheduling.services.protocols import protocol_version_ensure
from trialsite.errors import ServiceError
from trialsite.followups import reconcile_reminders_on_commit

V = Visit.Status


def _arm_of(protocol: Protocol, participant: Participant) -> Arm | None:
    """The protocol arm the participant follows; None when they have no arm yet and the protocol has several."""
    arm_code = participant_selectors.arm_code_of(participant)
    if arm_code is None:
        # A single-arm protocol (day0 = enrollment) has one arm whatever the allocation.
        return next(iter(protocol.arms.values())) if len(protocol.arms) == 1 else None
    try:
        return protocol.arm(arm_code)
    except KeyError as exc:
        raise ServiceError(str(exc), field_errors={"arm": [str(exc)]}) from exc


def _before_randomization(protocol: Protocol) -> Arm:
    """What exists before the arm is known: the common visits only. They are the same in every arm, so creating them
    at enrollment tells nobody anything about the allocation."""
    return Arm(code="", label="", visits=protocol.common_visits)


def _require_randomization_after(
    protocol: Protocol, rows: dict[str, Visit], schedule: ParticipantSchedule, participant: Participant
) -> None:
    """Refuse to randomize before the visit the protocol says randomization follows (e.g. BASELINE) has happened:
    the arm's first visits are planned on the assumption that it has (scheduling/ordering.py). Raising here rolls the
    randomization back (this runs inside participant_randomize's transaction)."""
    code = protocol.randomization_after
    if code is None or schedule.randomization_date is None:
        return
    visit = rows.get(code)
    occurred = (
        local_date(visit.occurred_at, zone_of(participant))
        if visit is not None and visit.status == V.COMPLETED and visit.occurred_at
        else None
    )
    if occurred is None or occurred > schedule.randomization_date:
        message = f"protocol {protocol.code} randomizes only after the {code} visit is completed"
        raise ServiceError(message, field_errors={"randomization": [message]})


@transaction.atomic
def schedule_generate(*, participant: Participant, by: Actor) -> list[Visit]:
    """Create the participant's protocol visits that can be planned now, in a constant number of queries (one bulk
    insert); returns the visits created.

    Runs at enrollment (the enroll hook) and again at randomization (the randomize hook), inside those services'
    transactions, so a failure rolls the enrollment or randomization back. At enrollment the arm is not known yet:
    only the common visits (screening, a medication taper, baseline) are created, and they are the same in every arm.
    At randomization the arm's own visits follow, planned from what already happened. The protocol version is pinned
    when the schedule is first created: a participant stays on the version they started under."""
    study = participant.study
    if not study.protocol_code:
        return []
    schedule = (
        ParticipantSchedule.objects.select_for_update(of=("self",))
        .select_related("protocol_version")
        .filter(participant=participant)
        .first()
    )
    version = (
        schedule.protocol_version if schedule is not None else protocol_version_ensure(code=study.protocol_code, by=by)
    )
    if version is None:
        raise ServiceError(
            f"study {study.code} names protocol {study.protocol_code!r}, which is not loaded",
            field_errors={"protocol": ["load it with manage.py load_protocol"]},
        )
    protocol = version.protocol()
    arm = _arm_of(protocol, participant)
    tz = zone_of(participant)
    enrollment_date = local_date(participant.enrolled_at, tz) if participant.enrolled_at else None
    randomization_date = local_date(participant.randomized_at, tz) if participant.randomized_at else None
    changes: list[tuple[str, Any, Any]] = []
    if schedule is None:
        schedule = ParticipantSchedule.objects.create(
            participant=participant,
            protocol_version=version,
            enrollment_date=enrollment_date,
            randomization_date=randomization_date,
        )
        changes.append(("protocol_version", None, str(version)))
        action = AuditEvent.Action.CREATE
    else:
        action = AuditEvent.Action.UPDATE
        for name, value in (("enrollment_date", enrollment_date), ("randomization_date", randomization_date)):
            if getattr(schedule, name) is None and value is not None:
                changes.append((name, None, value.isoformat()))
                setattr(schedule, name, value)
        if changes:
            schedule.save(update_fields=["enrollment_date", "randomization_date"])
    rows = {v.code: v for v in Visit.objects.filter(participant=participant, unscheduled=False).order_by("id")}
    if arm is not None and len(protocol.arms) > 1:
        _require_randomization_after(protocol, rows, schedule, participant)
    plan_arm = arm if arm is not None else _before_randomization(protocol)
    plan = _plan_from(plan_arm, schedule, rows, tz)
    visits = _planned_rows(participant, version, plan_arm, plan, skip=rows)
    if not visits and not changes:
        return []  # nothing new to plan and nothing written: nothing to audit
    _allocate_ids(visits, protocol, arm, rows)
    created = Visit.objects.bulk_create(visits)
    # One event for the whole plan keeps generation at a constant number of queries; each row's dates are in the
    # visit table and every later change to them is audited per visit. Once the arm is known the plan is the arm's
    # (its visits and their dates tell the arm), so blinded readers of the history never get that event; the common
    # visits created before randomization tell nothing and stay readable.
    arm_specific = arm is not None and len(protocol.arms) > 1
    audit_participant_record(
        participant,
        by=by,
        action=action,
        entity_type="participant_schedule",
        entity_id=schedule.pk,
        sensitivity=AuditEvent.Sensitivity.ALLOCATION if arm_specific else AuditEvent.Sensitivity.NONE,
        changes=[*changes, ("visits", None, [f"{v.code} {plan[v.code].target.isoformat()}" for v in created])],
    )
    hooks.visits_changed(participant=participant, visits=created, by=by)
    return created


def _planned_rows(
    participant: Participant,
    version: ProtocolVersion,
    arm: Arm,
    plan: Mapping[str, engine.PlannedDates],
    skip: Collection[str] = (),
) -> list[Visit]:
    """The unsaved visit rows of ``arm``'s visits that ``plan`` dates, less the codes in ``skip``, in the arm's order:
    the rows ``schedule_generate`` inserts (a bulk writer such as ``manage.py seed_scale`` builds them here too)."""
    numbers = arm.dosing_numbers()
    return [
        Visit(
            participant=participant,
            site_id=participant.site_id,
            study_id=participant.study_id,
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
        if v.code in plan and v.code not in skip
    ]


def _allocate_ids(visits: list[Visit], protocol: Protocol, arm: Arm | None, rows: Mapping[str, Visit]) -> None:
    """Give the new visits (kept in the protocol's order) their ids so that the ids tell a blinded viewer nothing of
    the arm: the visits that serve
    the protocol's timepoints first (in timepoint order), then the others, and every arm takes as many ids as the
    longest arm would (on PostgreSQL, from the table's own sequence), so neither the ids of the visits shown nor the
    next participant's tell how many visits an arm has (``scheduling.blinded_view``)."""
    if not visits:
        return
    schedule = blinded_schedule(protocol)
    order = {tp.code: n for n, tp in enumerate(schedule.timepoints)}

    def rank(v: Visit) -> int:
        tp = schedule.timepoint_of(arm.code, v.code) if arm is not None else schedule.timepoint(v.code)
        if tp is None and arm is None:
            tp = next((t for t in schedule.timepoints if v.code in t.visits.values()), None)
        return order[tp.code] if tp is not None else len(order)

    if connection.vendor != "postgresql":
        return  # the embedded demo database: ids in the protocol's order
    ranked = sorted(visits, key=rank)  # stable: the others keep the protocol's order
    span = len(visits)
    if arm is not None:
        span = max([span, *(len([c for c in a.codes if c not in rows]) for a in protocol.arms.values())])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [Visit._meta.db_table, span]
        )
        ids = sorted(row[0] for row in cursor.fetchall())
    for visit, pk in zip(ranked, ids, strict=False):
        visit.pk = pk


def _plan_from(
    arm: Arm, schedule: ParticipantSchedule, rows: dict[str, Visit], tz: zoneinfo.ZoneInfo
) -> dict[str, engine.PlannedDates]:
    """The plan of ``arm`` given the visits that already exist: those that happened anchor what follows on their
    actual date, and no existing visit's dates are rewritten here (re-planning is ``_replan_after``'s job)."""
    known = {c: v for c, v in rows.items() if c in set(arm.codes)}
    current = {c: p for c, v in known.items() if (p := _planned(v)) is not None}
    actual = {c: local_date(v.occurred_at, tz) for c, v in known.items() if v.status == V.COMPLETED and v.occurred_at}
    return engine.replan(arm, schedule.day0_dates(), actual, current, list(current))


def _on_enrolled(*, participant: Participant, by: Actor, **kwargs: Any) -> None:
    schedule_generate(participant=participant, by=by)
    reconcile_reminders_on_commit(participant.pk)


def _on_randomized(*, participant: Participant, by: Actor, **kwargs: Any) -> None:
    schedule_generate(participant=participant, by=by)
    reconcile_reminders_on_commit(participant.pk)


def _replan_after(visit: Visit, *, by: Actor) -> list[Visit]:
    """Re-plan every not-completed visit that depends on ``visit`` (transitively) from actual dates; returns the
    visits that moved. Runs inside the caller's transaction, which reports the moved visits to the hooks."""
    participant = visit.participant
    if visit.unscheduled or visit.protocol_version is None:
        return []
    schedule = ParticipantSchedule.objects.filter(participant=participant).first()
    protocol = visit.protocol_version.protocol()
    # Before randomization only the common visits exist, and they re-plan among themselves (a late screening moves
    # the taper's end and baseline).
    arm = _arm_of(protocol, participant) or _before_randomization(protocol)
    if schedule is None or visit.code not in arm.codes or not engine.dependents(arm, visit.code):
        return []
    tz = zone_of(participant)
    rows = {
        v.code: v
        for v in Visit.objects.select_for_update().filter(participant=participant, unscheduled=False).order_by("id")
    }
    current = {c: p for c, v in rows.items() if (p := _planned(v)) is not None}
    actual = {c: local_date(v.occurred_at, tz) for c, v in rows.items() if v.status == V.COMPLETED and v.occurred_at}
    # Missed and cancelled visits are history too: their kept target anchors what follows.
    frozen = [c for c, v in rows.items() if v.status not in OPEN]
    after = engine.replan(arm, schedule.day0_dates(), actual, current, frozen)
    moved = []
    for code in engine.changed_visits(current, after):
        row = rows.get(code)
        if row is None or code not in after or row.status not in OPEN:
            continue
        _move(row, after[code], participant=participant, by=by)
        moved.append(row)
    if moved:
        for row in moved:
            row.updated_at = timezone.now()
        Visit.objects.bulk_update(
            moved, ["target_date", "window_start", "window_end", "needs_reschedule", "updated_at"]
        )
    return moved


def _planned(visit: Visit) -> engine.PlannedDates | None:
    """A protocol visit's planned dates (always set for a generated visit; typed optional on the model)."""
    if visit.target_date is None or visit.window_start is None or visit.window_end is None:
        return None
    return engine.PlannedDates(visit.target_date, visit.window_start, visit.window_end)


def _move(row: Visit, new: engine.PlannedDates, *, participant: Participant, by: Actor) -> None:
    """Give ``row`` its new planned dates (saved in bulk by the caller) and audit the change. A scheduled slot that
    now lies outside the window is kept but flagged for rescheduling."""
    changes: list[tuple[str, Any, Any]] = [
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
        slot_day = local_date(row.scheduled_start, zone_of(participant))
        if not new.contains(slot_day) and not row.needs_reschedule:
            row.needs_reschedule = True
            changes.append(("needs_reschedule", False, True))
    row.participant = participant
    _audit_visit(row, by=by, action=AuditEvent.Action.UPDATE, changes=changes, reason="anchor moved")
