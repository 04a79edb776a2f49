"""Many participants, fast: bulk inserts of participants with their contact details, allocation, protocol visits,
questionnaires, some safety alerts and failed messages, for the tests that need a study at scale (query counts) and
for bench/bench_dashboard.py. Not audited and not through the services (it is test data at volume); the rows are the
shapes the services write, with the dates the protocol's engine plans.

``seed_participants(study, sites, n, now=..., by=user)`` adds ``n`` participants spread over ``sites``: seven in ten
randomized (arms in turn) with a plan from the study's protocol whose past visits are mostly completed (a few
missed, a few overdue) and, at a few, a visit booked for the site's today; the rest screening, enrolled or
withdrawn. One randomized participant in fifty has an open safety alert and one in fifty a failed message; one in
twenty-five has a booked visit flagged for rescheduling. Each site gets rooms and therapists (made the first time,
when it has too few), and its dosing sessions are booked on the calendar from a week before the site's today to two
weeks after it, a session per room and day (with its room and therapist bookings): the calendar's week and the home
page's dosing list are full. Questionnaires follow their visits: due while the window is open, so the home page's
"questionnaires due" and "overdue" lists fill too."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from typing import Any

from django.db import connection, transaction
from django.db.models import JSONField, Max, Model
from django.utils import timezone
from psycopg.types.json import Jsonb

from assessments.models import Administration, Response, SafetyAlert
from notifications.models import Notification
from participants.models import (
    AllocationList,
    AllocationSlot,
    ContactDetails,
    Participant,
    ParticipantCounter,
    Site,
    StaffMembership,
    Study,
)
from scheduling import engine
from scheduling.models import Booking, ParticipantSchedule, Room, Visit
from scheduling.protocol import VisitKind
from scheduling.selectors import arm_only_codes
from scheduling.services import protocol_version_ensure
from scheduling.services.generation import _planned_rows
from trialsite.roles import Role

BATCH = 2000


def _copy(model: type[Model], objs: list[Any]) -> None:
    """Insert ``objs`` with PostgreSQL's COPY (many times faster than bulk_create at this volume), their ids taken
    from the table's sequence first so that rows made later can point at them."""
    if not objs:
        return
    table = model._meta.db_table
    fields = list(model._meta.concrete_fields)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, len(objs)]
        )
        for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = pk
    stamp = timezone.now()
    quote = connection.ops.quote_name
    statement = f"COPY {quote(table)} ({', '.join(quote(f.column) for f in fields)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for obj in objs:
            row = []
            for f in fields:
                value = getattr(obj, f.attname)
                if value is None and (getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)):
                    value = stamp
                elif isinstance(f, JSONField):
                    value = Jsonb(value)
                row.append(value)
            copy.write_row(row)


STATUSES = ["randomized"] * 7 + ["screening", "enrolled", "withdrawn"]


def _midnight(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=zone)


ROOMS = 3  # per site; a dosing session takes a room and two therapists for the day
BOOKED_DAYS = range(-7, 15)  # days around the site's today with dosing sessions on the calendar
RESCHEDULE_EVERY = 25  # one randomized participant in this many has a booked visit flagged for rescheduling


def _rooms_and_therapists(site: Site) -> tuple[list[Room], list[Any]]:
    """The site's rooms in use and its therapists, made (without audit: test data) when it has fewer than needed."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    rooms = list(Room.objects.filter(site=site, active=True, retired_at__isnull=True).order_by("name", "id"))
    for k in range(len(rooms), ROOMS):
        rooms.append(Room.objects.create(site=site, name=f"Seeded room {k + 1}"))
    users = get_user_model().objects
    therapists = list(
        users.filter(is_active=True, memberships__site=site, memberships__role=Role.THERAPIST)
        .distinct()
        .order_by("username")
    )
    group, _ = Group.objects.get_or_create(name=Role.THERAPIST)
    for k in range(len(therapists), 2 * ROOMS):
        user, _ = users.get_or_create(username=f"seeded-therapist-{site.code.lower()}-{k + 1}")
        StaffMembership.objects.get_or_create(user=user, site=site, role=Role.THERAPIST)
        user.groups.add(group)
        therapists.append(user)
    return rooms[:ROOMS], therapists[: 2 * ROOMS]


def _book_dosing_sessions(
    sites: list[Site], visits: list[Visit], now: dt.datetime
) -> list[tuple[Visit, Room, list[Any]]]:
    """Book the sites' planned dosing visits on the calendar: for each day of ``BOOKED_DAYS`` around the site's today
    and each room, one session (09:00 at the site) of a visit whose window holds that day, with the room's two
    therapists; sessions before today are completed. Rooms and days booked already (an earlier seeding) are left
    alone. Returns (visit, room, therapists) for the bookings to write once the visits have ids."""
    booked = []
    for site in sites:
        zone = zoneinfo.ZoneInfo(site.time_zone)
        today = now.astimezone(zone).date()
        rooms, therapists = _rooms_and_therapists(site)
        taken = {
            (room_id, start.astimezone(zone).date())
            for room_id, start in Visit.objects.filter(room__in=rooms, scheduled_start__isnull=False).values_list(
                "room_id", "scheduled_start"
            )
        }
        candidates = [
            v
            for v in visits
            if v.participant.site_id == site.pk
            and v.participant.status == "randomized"
            and v.kind == VisitKind.DOSING
            and v.status == Visit.Status.PLANNED
        ]
        for offset in BOOKED_DAYS:
            day = today + dt.timedelta(days=offset)
            for r, room in enumerate(rooms):
                if (room.pk, day) in taken:
                    continue
                visit = next((v for v in candidates if v.window_start <= day <= v.window_end), None)
                if visit is None:
                    break
                candidates.remove(visit)
                visit.scheduled_start = _midnight(day, zone) + dt.timedelta(hours=9)
                visit.scheduled_end = visit.scheduled_start + dt.timedelta(minutes=visit.duration_minutes)
                visit.room = room
                if day < today:
                    visit.status, visit.occurred_at = Visit.Status.COMPLETED, visit.scheduled_start
                else:
                    visit.status = Visit.Status.SCHEDULED
                booked.append((visit, room, therapists[2 * r : 2 * r + 2]))
    return booked


def _write_bookings(booked: list[tuple[Visit, Room, list[Any]]]) -> None:
    through = Visit.staff.through
    through.objects.bulk_create(
        [through(visit_id=visit.pk, user_id=user.pk) for visit, _room, users in booked for user in users],
        batch_size=BATCH,
    )
    holds = []
    for visit, room, users in booked:
        start, end = visit.scheduled_start, visit.scheduled_end
        holds.append(Booking(visit=visit, resource=f"room:{room.pk}", room=room, starts_at=start, ends_at=end))
        holds.extend(Booking(visit=visit, resource=f"user:{u.pk}", user=u, starts_at=start, ends_at=end) for u in users)
    Booking.objects.bulk_create(holds, batch_size=BATCH)


@transaction.atomic
def seed_participants(study: Study, sites: list[Site], n: int, *, now: dt.datetime, by) -> list[Participant]:
    version = protocol_version_ensure(code=study.protocol_code, by=None)
    assert version is not None, f"study {study.code} has no protocol"
    protocol = version.protocol()
    arms = {arm.code: arm for arm in study.arms.all()}
    arm_codes = [code for code in protocol.arms if code in arms]
    allocation = AllocationList.objects.filter(study=study, active=True).first() or AllocationList.objects.create(
        study=study, source=AllocationList.Source.GENERATED, seed="seed", created_by=by
    )

    # Participants, numbered after each site's counter.
    participants: list[Participant] = []
    plans: list[tuple[Participant, str]] = []  # (participant, status) in creation order
    counters = {}
    for site in sites:
        counter, _ = ParticipantCounter.objects.get_or_create(study=study, site=site)
        counters[site.pk] = counter
    for i in range(n):
        site = sites[i % len(sites)]
        counter = counters[site.pk]
        counter.last_number += 1
        status = STATUSES[i % len(STATUSES)]
        randomized_at = (
            now - dt.timedelta(days=(i * 7) % 240, hours=2) if status in ("randomized", "withdrawn") else None
        )
        enrolled_at = (randomized_at or now - dt.timedelta(days=i % 30)) - dt.timedelta(days=14)
        p = Participant(
            participant_id=f"{study.code}-{site.code}-{counter.last_number:05d}",
            study=study,
            site=site,
            number=counter.last_number,
            status=status,
            stratum=site.code,
            eligibility_verdict=status != "screening" or None,
            enrolled_at=enrolled_at if status != "screening" else None,
            randomized_at=randomized_at,
        )
        if status == "withdrawn":
            p.withdrawal_level, p.withdrawal_reason, p.withdrawal_date = "stop_follow_up", "seeded", now.date()
        participants.append(p)
        plans.append((p, status))
    ParticipantCounter.objects.bulk_update(list(counters.values()), ["last_number"])
    Participant.objects.bulk_create(participants, batch_size=BATCH)
    _copy(
        ContactDetails,
        [
            ContactDetails(participant=p, full_name=f"Seeded Person {p.number}", email=f"seeded{p.pk}@example.org")
            for p in participants
        ],
    )

    # Allocation: arms in turn, after the stratum's last sequence number.
    last = dict(
        AllocationSlot.objects.filter(allocation_list=allocation)
        .values("stratum")
        .annotate(last=Max("sequence"))
        .values_list("stratum", "last")
    )
    sequences = {site.code: itertools.count((last.get(site.code) or 0) + 1) for site in sites}
    slots, arm_of = [], {}
    turns = {site.code: itertools.cycle(arm_codes) for site in sites}  # arms in turn at each site
    for p, _status in plans:
        if p.randomized_at is None:
            continue
        code = next(turns[p.site.code])
        arm_of[p.pk] = code
        slots.append(
            AllocationSlot(
                allocation_list=allocation,
                stratum=p.site.code,
                sequence=next(sequences[p.site.code]),
                arm=arms[code],
                participant=p,
                allocated_at=p.randomized_at,
            )
        )
    _copy(AllocationSlot, slots)

    # Schedules and visits from the protocol's engine.
    schedules, visits = [], []
    arm_only = arm_only_codes(protocol)  # a blinded list leaves these out: the flag goes on a visit every arm has
    past = itertools.count()
    randomized_seen = itertools.count()
    for p, status in plans:
        if p.pk not in arm_of:
            continue
        zone = zoneinfo.ZoneInfo(p.site.time_zone)
        today = now.astimezone(zone).date()
        schedule = ParticipantSchedule(
            participant=p,
            protocol_version=version,
            enrollment_date=p.enrolled_at.astimezone(zone).date(),
            randomization_date=p.randomized_at.astimezone(zone).date(),
        )
        schedules.append(schedule)
        arm = protocol.arm(arm_of[p.pk])
        plan = engine.plan_visits(arm, schedule.day0_dates())
        reschedule = status == "randomized" and next(randomized_seen) % RESCHEDULE_EVERY == 0
        for k, v in enumerate(arm.visits):
            if v.code not in plan:
                continue
            dates = plan[v.code]
            (visit,) = _planned_rows(p, version, arm, {v.code: dates})
            if status == "withdrawn" and dates.target >= today:
                visit.status, visit.cancel_reason = Visit.Status.CANCELLED, "withdrawn"
            elif dates.window_end is not None and dates.window_end < today:
                roll = next(past) % 20  # in turn: one past visit in twenty missed, one overdue, the rest completed
                if roll == 0:
                    visit.status, visit.missed_reason = Visit.Status.MISSED, "seeded"
                elif roll != 1:  # roll 1: left planned, so overdue
                    visit.status = Visit.Status.COMPLETED
                    visit.occurred_at = _midnight(dates.target, zone) + dt.timedelta(hours=10)
            elif (
                dates.window_start is not None
                and dates.window_start <= today <= dates.window_end
                and k % 3 == 0
                and v.kind != VisitKind.DOSING  # dosing sessions take a room: booked below
            ):
                visit.status = Visit.Status.SCHEDULED
                visit.scheduled_start = _midnight(today, zone) + dt.timedelta(hours=9 + k % 8)
                visit.scheduled_end = visit.scheduled_start + dt.timedelta(minutes=v.duration_minutes)
            elif (
                reschedule
                and v.kind != VisitKind.DOSING
                and v.code not in arm_only
                and dates.window_start is not None
                and dates.window_start > today
            ):
                # Booked on its target date, then an earlier visit moved: flagged for rescheduling.
                reschedule = False
                visit.status, visit.needs_reschedule = Visit.Status.SCHEDULED, True
                visit.scheduled_start = _midnight(dates.target, zone) + dt.timedelta(hours=10)
                visit.scheduled_end = visit.scheduled_start + dt.timedelta(minutes=v.duration_minutes)
            visits.append(visit)
    booked = _book_dosing_sessions(sites, visits, now)
    _copy(ParticipantSchedule, schedules)
    _copy(Visit, visits)
    _write_bookings(booked)

    # Questionnaires of every visit: answered at completed visits, due (or expired) elsewhere.
    adms = []
    for visit in visits:
        zone = zoneinfo.ZoneInfo(visit.participant.site.time_zone)
        opens = _midnight(visit.window_start, zone) if visit.window_start else None
        closes = _midnight(visit.window_end + dt.timedelta(days=1), zone) if visit.window_end else None
        for order, due in enumerate(visit.instruments):
            if visit.status == Visit.Status.COMPLETED:
                status = Administration.Status.COMPLETED
            elif visit.status in (Visit.Status.MISSED, Visit.Status.CANCELLED):
                status = Administration.Status.NOT_APPLICABLE
            else:
                status = Administration.Status.EXPIRED if closes and closes < now else Administration.Status.DUE
            adms.append(
                Administration(
                    participant=visit.participant,
                    visit=visit,
                    instrument_code=due["code"],
                    respondent=due["respondent"],
                    order=order,
                    status=status,
                    opens_at=opens,
                    closes_at=closes,
                )
            )
    _copy(Administration, adms)

    # An open safety alert at one randomized participant in fifty (on a completed screen), a failed message at another.
    screens = [
        a
        for a in adms
        if a.instrument_code == "CSSRS_SCREEN"
        and a.status == Administration.Status.COMPLETED
        and a.visit.code == "SCREEN"
    ]
    responses = [
        Response(
            administration=a,
            participant=a.participant,
            visit=a.visit,
            instrument_code=a.instrument_code,
            instrument_version="1.0",
            source=Response.Source.STAFF,
            entered_by=by,
            submitted_at=a.visit.occurred_at,
        )
        for a in screens[::50]
    ]
    Response.objects.bulk_create(responses)
    SafetyAlert.objects.bulk_create(
        [
            SafetyAlert(
                participant=r.participant,
                response=r,
                source_id=r.pk,
                rule_code="CSSRS_SCREEN_HIGH",
                severity=SafetyAlert.Severity.HIGH,
                message="High risk on the C-SSRS screen (seeded)",
                created_at=r.submitted_at,
            )
            for r in responses
        ],
        batch_size=BATCH,
    )
    randomized = [p for p, status in plans if status == "randomized"]
    Notification.objects.bulk_create(
        [
            Notification(
                key=f"seed:{p.pk}",
                participant=p,
                recipient_kind="participant",
                channel="email",
                template="visit_reminder",
                nominal_at=now - dt.timedelta(days=1),
                due_at=now - dt.timedelta(days=1),
                status=Notification.Status.FAILED,
                attempts=5,
                last_error="550 mailbox unavailable",
            )
            for p in randomized[::50]
        ],
        batch_size=BATCH,
    )
    # Fresh statistics, as autovacuum would gather them on a live database: the planner then sees the volume.
    with connection.cursor() as cursor:
        for model in (
            Participant,
            ContactDetails,
            AllocationSlot,
            ParticipantSchedule,
            Visit,
            Visit.staff.through,
            Booking,
            Administration,
        ):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return participants
