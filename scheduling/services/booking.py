"""Booking a visit's slot: time, room and staff, with the conflict checks that keep a therapist or a room from
being booked twice (a 409 naming the conflict)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q

from audit.models import AuditEvent
from participants import access
from participants import selectors as participant_selectors
from participants.access import Actor
from participants.models import Site
from participants.plausible import require_plausible
from scheduling import hooks
from scheduling.lifecycle import check_transition
from scheduling.local_time import format_span, overnight_room_end, zone_of
from scheduling.models import Booking, Room, Visit
from scheduling.protocol import THERAPY_SESSIONS, VisitKind
from scheduling.services._visit_rows import _audit_visit, _lock, _release_bookings
from trialsite.errors import Conflict, PermissionDeniedError, ServiceError
from trialsite.followups import reconcile_reminders_on_commit
from trialsite.roles import MANAGE, SCHEDULE, Role

V = Visit.Status


@transaction.atomic
def visit_schedule(
    *,
    visit: Visit,
    start: dt.datetime,
    end: dt.datetime | None = None,
    room: Room | None = None,
    staff: Sequence[str] = (),
    by: Actor,
    reason: str | None = None,
) -> tuple[Visit, list[str]]:
    """Give a visit its slot, room and staff; returns the visit and warnings (e.g. a changed therapist dyad).

    Dosing sessions need ``staff_required`` distinct therapists and a room; an overnight stay keeps the room until
    09:00 local the next morning. A therapist or room already booked at an overlapping time is a 409."""
    visit = _lock(visit)
    therapist_only = _require_may_book(visit, by)
    check_transition(visit, V.SCHEDULED)
    site = visit.participant.site
    end = _session_end(visit, start, end)
    _check_room(room, site)
    is_dosing = visit.kind == VisitKind.DOSING
    users = _staff_users(staff, site, therapists_only=is_dosing)
    if therapist_only and not any(user.pk == getattr(by, "pk", None) for user in users):
        raise PermissionDeniedError("a therapist books only the sessions they work on: name yourself among the staff")
    notes: list[tuple[str, Any, Any]] = []
    if is_dosing:
        _check_dosing_session(visit, users=users, room=room, start=start, end=end)
        # Other apps may refuse a dosing session (the safety app: a prohibited medication or its washout) or note
        # what let it go ahead; the notes go into this booking's audit event.
        notes = hooks.dosing_booking_checked(visit=visit, start=start, by=by)
    wanted = _bookings_wanted(visit, users=users, room=room, start=start, end=end, site_tz=zone_of(site))
    _refuse_clash(visit, wanted, site_tz=zone_of(site))
    _hold(visit, wanted)
    warnings = _dyad_warnings(visit, users) if is_dosing else []
    if _record_slot(visit, start=start, end=end, room=room, users=users, by=by, reason=reason, notes=notes):
        hooks.visits_changed(participant=visit.participant, visits=[visit], by=by)
    reconcile_reminders_on_commit(visit.participant_id)
    return visit, warnings


# --- the steps of visit_schedule, in the order it takes them ------------------------------------------------------


def _require_may_book(visit: Visit, by: Actor) -> bool:
    """Coordinators, investigators and administrators book any visit (and the system, as None). A therapist books
    only the therapy sessions (preparation, dosing, integration) they work on; True says the caller is such a
    therapist, who must then be among the session's staff."""
    site_id = visit.participant.site_id
    if by is None or access.has_role(by, site_id, MANAGE):
        return False
    access.require_role(by, site_id, SCHEDULE, "schedule visits")
    if visit.kind not in THERAPY_SESSIONS:
        raise PermissionDeniedError(
            "a therapist books only therapy sessions (preparation, dosing, integration), not this visit"
        )
    return True


def _session_end(visit: Visit, start: dt.datetime, end: dt.datetime | None) -> dt.datetime:
    """The end of the session: as given, or the visit's duration after ``start``."""
    # A booking is planned ahead: only "not before the study's start" (and an offset) applies to it.
    require_plausible(visit.participant, {"start": start, "end": end}, future=False)
    end = end or start + dt.timedelta(minutes=visit.duration_minutes)
    if end <= start:
        raise ServiceError("the session must end after it starts", field_errors={"end": ["must be after start"]})
    return end


def _check_room(room: Room | None, site: Site) -> None:
    """The room belongs to the visit's site and is in use. A retired room keeps its past bookings, takes no more."""
    if room is None:
        return
    if room.site_id != site.pk:
        raise ServiceError("the room is at another site", field_errors={"room": [f"not a room at {site.code}"]})
    if room.retired_at is not None:
        raise ServiceError(
            f"room {room.name} is retired and cannot be booked",
            field_errors={"room": [f"room {room.name} was retired on {room.retired_at.date().isoformat()}"]},
        )
    if not room.active:
        raise ServiceError("the room is not in use", field_errors={"room": ["inactive room"]})


def _staff_users(usernames: Sequence[str], site: Site, *, therapists_only: bool) -> list[User]:
    """The users named, in the order given: each listed once, each active at the site (a therapist there when the
    session is a dosing session)."""
    names = list(dict.fromkeys(usernames))
    if len(names) != len(usernames):
        raise ServiceError("staff are listed twice", field_errors={"staff": ["list each person once"]})
    found = participant_selectors.active_staff_at_site(site, names, role=Role.THERAPIST if therapists_only else None)
    missing = [n for n in names if n not in found]
    if missing:
        what = "therapists" if therapists_only else "staff members"
        raise ServiceError(
            f"not {what} at {site.code}: {', '.join(missing)}",
            field_errors={"staff": [f"{n} is not a {what[:-1]} at {site.code}" for n in missing]},
        )
    return [found[n] for n in names]


def _check_dosing_session(
    visit: Visit, *, users: list[User], room: Room | None, start: dt.datetime, end: dt.datetime
) -> None:
    """A dosing session has its dyad of distinct therapists, a room and its full duration; every gap is named."""
    errors: dict[str, list[str]] = {}
    if len(users) != visit.staff_required:
        errors["staff"] = [f"a dosing session needs {visit.staff_required} distinct therapists, got {len(users)}"]
    if room is None:
        errors["room"] = ["a dosing session needs a room"]
    if end - start < dt.timedelta(minutes=visit.duration_minutes):
        errors["end"] = [f"a dosing session lasts {visit.duration_minutes} minutes"]
    if errors:
        raise ServiceError("the dosing session cannot be booked as given", field_errors=errors)


def _bookings_wanted(
    visit: Visit,
    *,
    users: list[User],
    room: Room | None,
    start: dt.datetime,
    end: dt.datetime,
    site_tz: zoneinfo.ZoneInfo,
) -> list[Booking]:
    """One booking per person for the session, and one for the room, which an overnight stay keeps until morning."""
    room_end = overnight_room_end(end, site_tz) if visit.overnight else end
    wanted = [Booking(visit=visit, resource=f"user:{u.pk}", user=u, starts_at=start, ends_at=end) for u in users]
    if room is not None:
        wanted.append(Booking(visit=visit, resource=f"room:{room.pk}", room=room, starts_at=start, ends_at=room_end))
    return wanted


def _refuse_clash(visit: Visit, wanted: list[Booking], *, site_tz: zoneinfo.ZoneInfo) -> None:
    """A 409 naming the first booking of another visit that overlaps one of ``wanted``.

    This friendly check names the conflict; the exclusion constraint (see ``_hold``) settles any race."""
    if not wanted:
        return
    overlap = Q()
    for b in wanted:
        overlap |= Q(resource=b.resource, starts_at__lt=b.ends_at, ends_at__gt=b.starts_at)
    clash = (
        Booking.objects.filter(overlap)
        .exclude(visit=visit)
        .select_related("visit__participant", "user", "room")
        .order_by("starts_at")
        .first()
    )
    if clash is None:
        return
    message = _describe(clash, site_tz, site_id=visit.participant.site_id)
    raise Conflict(message, field_errors={"room" if clash.room_id else "staff": [message]})


def _describe(booking: Booking, tz: zoneinfo.ZoneInfo, *, site_id: int) -> str:
    """The clash, naming the other session's participant and visit only when they are at the booking user's own
    site: a therapist who works at two sites is booked at the other one, whose participants this user may not see."""
    label = f"therapist {booking.user.username}" if booking.user is not None else f"room {_room_name(booking)}"
    participant = booking.visit.participant
    held_by = (
        f"{participant.participant_id} {booking.visit.code}"
        if participant.site_id == site_id
        else "a session at another site"
    )
    return f"{label} is booked {format_span(booking.starts_at, booking.ends_at, tz)} for {held_by}"


def _room_name(booking: Booking) -> str:
    return booking.room.name if booking.room is not None else booking.resource


def _hold(visit: Visit, wanted: list[Booking]) -> None:
    """Replace the visit's bookings with ``wanted``. Two requests that both passed ``_refuse_clash`` cannot both
    commit: the exclusion constraint refuses the second, which becomes a 409 here."""
    _release_bookings(visit)
    try:
        with transaction.atomic():
            Booking.objects.bulk_create(wanted)
    except IntegrityError as exc:
        raise Conflict(
            "a therapist or room was booked by someone else at the same moment; reload and try again",
            field_errors={"staff": ["booked concurrently"]},
        ) from exc


def _dyad_warnings(visit: Visit, users: list[User]) -> list[str]:
    """One warning per earlier dosing session of the participant held by another dyad."""
    previous = (
        Visit.objects.filter(
            participant_id=visit.participant_id, kind=VisitKind.DOSING, status__in=[V.SCHEDULED, V.COMPLETED]
        )
        .exclude(pk=visit.pk)
        .prefetch_related("staff")
        .order_by("scheduled_start")
    )
    mine = {u.username for u in users}
    warnings = []
    for other in previous:
        theirs = {u.username for u in other.staff.all()}
        if theirs and theirs != mine:
            warnings.append(
                f"the therapist dyad differs from {other.code} ({', '.join(sorted(theirs))}); "
                "changing the dyad within one treatment is allowed but should be rare"
            )
    return warnings


def _record_slot(
    visit: Visit,
    *,
    start: dt.datetime,
    end: dt.datetime,
    room: Room | None,
    users: list[User],
    by: Actor,
    reason: str | None,
    notes: list[tuple[str, Any, Any]] | None = None,
) -> bool:
    """Store the slot on the visit and audit what changed. True when the status or the slot's times changed (what
    the visits-changed hooks care about)."""
    old: dict[str, Any] = {
        "status": visit.status,
        "scheduled_start": visit.scheduled_start,
        "scheduled_end": visit.scheduled_end,
        "room": visit.room.name if visit.room is not None else None,
        "staff": sorted(u.username for u in visit.staff.all()),
    }
    visit.status, visit.scheduled_start, visit.scheduled_end, visit.room = V.SCHEDULED, start, end, room
    visit.needs_reschedule = False
    visit.save(update_fields=["status", "scheduled_start", "scheduled_end", "room", "needs_reschedule", "updated_at"])
    visit.staff.set(users)
    new: dict[str, Any] = {
        "status": V.SCHEDULED,
        "scheduled_start": start,
        "scheduled_end": end,
        "room": room.name if room else None,
        "staff": sorted(u.username for u in users),
    }
    changes = [(k, old[k], new[k]) for k in new if old[k] != new[k]]
    if changes or notes:
        _audit_visit(visit, by=by, action=AuditEvent.Action.UPDATE, changes=changes + list(notes or []), reason=reason)
    return any(k in ("status", "scheduled_start", "scheduled_end") for k, _, _ in changes)
