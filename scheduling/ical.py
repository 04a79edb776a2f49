"""iCalendar (RFC 5545) feeds of scheduled sessions.

Events name the pseudonymous participant id and the visit, never contact details (a calendar is synced to phones and
shared mail servers). Times are UTC so no VTIMEZONE block is needed; the UID is stable per visit so a client updates
an event in place when it is rescheduled."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import QuerySet
from django.utils import timezone
from icalendar import Calendar, Event

from participants.access import Actor
from scheduling.blinded_view import Lens
from scheduling.models import Visit

PRODID = "-//trialsite//scheduling//EN"


def visit_uid(visit: Visit) -> str:
    return f"visit-{visit.pk}@trialsite"


def calendar_for(visits: Iterable[Visit], *, name: str, lens: Lens | None = None) -> bytes:
    """The sessions as a calendar; with ``lens``, as its viewer may see them (a blinded viewer's list holds only
    visits shown with dates, each under its neutral code and name)."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    now = timezone.now().astimezone(dt.UTC)
    for visit in visits:
        if visit.scheduled_start is None or visit.scheduled_end is None:
            continue  # the calendar selectors list only visits that hold a slot
        event = Event()
        event.add("uid", visit_uid(visit))
        event.add("dtstamp", now)
        event.add("dtstart", visit.scheduled_start.astimezone(dt.UTC))
        event.add("dtend", visit.scheduled_end.astimezone(dt.UTC))
        shown = {"code": visit.code, "name": visit.name, "kind": visit.kind}
        if lens is not None:
            shown = lens.render(visit, shown)
        event.add("summary", f"{visit.participant.participant_id} {shown['code']} {shown['name']}")
        if visit.room is not None:
            event.add("location", visit.room.name)
        staff = ", ".join(u.username for u in visit.staff.all())
        event.add("description", f"Visit {shown['code']} ({shown['kind']})" + (f"; staff: {staff}" if staff else ""))
        event.add("status", "CONFIRMED")
        event.add("last-modified", visit.updated_at.astimezone(dt.UTC))
        cal.add_component(event)
    return bytes(cal.to_ical())


def calendar_seen_by(user: Actor, visits: QuerySet[Visit], *, name: str) -> bytes:
    """``visits`` as ``user`` may see them: for a blinded viewer only those the blinded view lists with dates, under
    their neutral codes and names (``scheduling.blinded_view``)."""
    lens = Lens(user)
    return calendar_for(lens.annotate(lens.listed(visits)), name=name, lens=lens)
