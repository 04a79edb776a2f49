"""The dosing calendar (``/calendar/?site=<code>&week=<YYYY-MM-DD>``): one site's week, its rooms by day and its
therapists with their sessions, the booking form for dosing sessions and the site's rooms.

Days run Monday to Sunday in the SITE's time zone, and a session sits on the day it starts there. Every read goes
through the owning apps' selectors (scoped to the user's sites: another site is a 404); every write through a service
(``visit_schedule``, ``room_create``, ``room_retire``), which decide what is allowed. Dosing sessions are the same in
every arm, and nothing here reads the allocation.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from dashboard.calendar_forms import BookingForm, RoomCreateForm, RoomRetireForm
from dashboard.views import staff_page
from participants import access
from participants import selectors as participant_selectors
from participants.models import Site
from scheduling import selectors as scheduling_selectors
from scheduling import services as scheduling_services
from scheduling.local_time import days_outside
from scheduling.models import Room, Visit
from trialsite.errors import ServiceError
from trialsite.roles import SCHEDULE

# Field errors of the booking service, by the form field that shows them.
_BOOKING_FIELDS = {"room": "room", "staff": "therapists", "start": "start", "end": "start", "reason": "reason"}


@dataclass(frozen=True)
class Week:
    """Seven local days of a site, Monday first."""

    monday: dt.date
    zone: zoneinfo.ZoneInfo

    @classmethod
    def containing(cls, day: dt.date, zone: zoneinfo.ZoneInfo) -> Week:
        return cls(monday=day - dt.timedelta(days=day.weekday()), zone=zone)

    @property
    def days(self) -> list[dt.date]:
        return [self.monday + dt.timedelta(days=i) for i in range(7)]

    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.monday, dt.time.min, self.zone)

    def end(self) -> dt.datetime:
        # Midnight at the start of the next Monday, so a week with a clock change lasts 167 or 169 hours.
        return dt.datetime.combine(self.monday + dt.timedelta(days=7), dt.time.min, self.zone)


@dataclass(frozen=True)
class Session:
    visit: Visit
    url: str
    day: dt.date
    span: str
    therapists: list[str]
    room_name: str


@dataclass
class RoomRow:
    room: Room | None
    cells: list[list[Session]]


@dataclass
class TherapistRow:
    username: str
    sessions: list[Session] = field(default_factory=list)


def participant_visit_url(participant_id: str, code: str) -> str:
    return f"{reverse('dashboard-participant', args=[participant_id])}#visit-{code}"


def _span(start: dt.datetime, end: dt.datetime | None, zone: zoneinfo.ZoneInfo) -> str:
    """'09:00–17:00' in the site's zone; the end carries its date when it falls on another day."""
    s = start.astimezone(zone)
    if end is None:
        return f"{s:%H:%M}"
    e = end.astimezone(zone)
    return f"{s:%H:%M}–{e:%H:%M}" if e.date() == s.date() else f"{s:%H:%M}–{e:%Y-%m-%d %H:%M}"


def _session(visit: Visit, zone: zoneinfo.ZoneInfo) -> Session:
    assert visit.scheduled_start is not None  # the selector lists sessions holding a slot only
    return Session(
        visit=visit,
        url=participant_visit_url(visit.participant.participant_id, visit.code),
        day=visit.scheduled_start.astimezone(zone).date(),
        span=_span(visit.scheduled_start, visit.scheduled_end, zone),
        therapists=[u.username for u in visit.staff.all()],
        room_name=visit.room.name if visit.room is not None else "",
    )


def _visit_labels(visits: list[Visit], zone: zoneinfo.ZoneInfo) -> dict[int, str]:
    """Each bookable visit's label, by id (thousands in a large study: the wording is translated once)."""
    window, booked = _("window %(start)s to %(end)s"), _("booked %(when)s")
    labels = {}
    for visit in visits:
        parts = [f"{visit.participant.participant_id} · {visit.code}"]
        if visit.window_start and visit.window_end:
            parts.append(window % {"start": visit.window_start.isoformat(), "end": visit.window_end.isoformat()})
        if visit.status == Visit.Status.SCHEDULED and visit.scheduled_start is not None:
            when = visit.scheduled_start.astimezone(zone)
            parts.append(booked % {"when": f"{when:%Y-%m-%d} {_span(visit.scheduled_start, None, zone)}"})
        labels[visit.pk] = " · ".join(parts)
    return labels


def calendar_url(site: Site, monday: dt.date | None = None) -> str:
    query = {"site": site.code}
    if monday is not None:
        query["week"] = monday.isoformat()
    return f"{reverse('dashboard-calendar')}?{urlencode(query)}"


@dataclass
class Page:
    """What every calendar request reads once: the site, its week, rooms, therapists and the visits to book."""

    site: Site
    week: Week
    week_error: str | None
    sites: list[Site]
    rooms: list[Room]
    therapists: list[str]
    bookable: list[Visit]
    sessions: list[Session]

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return self.week.zone


# The booking form offers the dosing visits whose window meets the shown week or the weeks after it, up to this many
# weeks in all (and those booked in the shown week, to move them): a site's whole list runs to thousands.
BOOKING_WEEKS = 4


def _load(request: HttpRequest) -> Page:
    """The site asked for (404 when it is not one of the user's) and the week (this week at the site when none is
    asked for, or when the date given is not a date)."""
    user = request.user
    sites = list(participant_selectors.sites_for(user))
    code = request.GET.get("site", "")
    site = next((s for s in sites if s.code == code), None) if code else (sites[0] if sites else None)
    if site is None:
        raise Http404("no such site among yours")
    zone = zoneinfo.ZoneInfo(site.time_zone)
    today = timezone.now().astimezone(zone).date()
    week_error = None
    day = today
    if request.GET.get("week"):
        try:
            day = dt.date.fromisoformat(request.GET["week"])
        except ValueError:
            week_error = _("“%(value)s” is not a date; this week is shown.") % {"value": request.GET["week"]}
    week = Week.containing(day, zone)
    visits = scheduling_selectors.calendar_dosing_sessions(user, site.pk, week.start(), week.end())
    return Page(
        site=site,
        week=week,
        week_error=week_error,
        sites=sites,
        rooms=list(scheduling_selectors.calendar_rooms(user, site.pk)),
        therapists=[u.username for u in participant_selectors.therapists_at_site(user, site)],
        bookable=list(
            scheduling_selectors.calendar_bookable_visits(
                user,
                site.pk,
                week.monday,
                week.monday + dt.timedelta(weeks=BOOKING_WEEKS, days=-1),
                week.start(),
                week.end(),
            )
        ),
        sessions=[_session(v, zone) for v in visits],
    )


def _room_rows(page: Page) -> list[RoomRow]:
    """A row per room in use, and per retired room that held a session this week; a column per day."""
    by_room: dict[int | None, list[list[Session]]] = defaultdict(lambda: [[] for _ in range(7)])
    for session in page.sessions:
        room_id = session.visit.room_id
        by_room[room_id][(session.day - page.week.monday).days].append(session)
    rows = [
        RoomRow(room=room, cells=by_room[room.pk])
        for room in page.rooms
        if room.retired_at is None or room.pk in by_room
    ]
    if None in by_room:
        rows.append(RoomRow(room=None, cells=by_room[None]))
    return rows


def _therapist_rows(page: Page) -> list[TherapistRow]:
    """Each therapist of the site with their sessions of the week; anyone booked who is no longer a therapist there
    is listed after them."""
    rows = {name: TherapistRow(username=name) for name in page.therapists}
    others: dict[str, TherapistRow] = {}
    for session in page.sessions:
        for name in session.therapists:
            row = rows.get(name) or others.setdefault(name, TherapistRow(username=name))
            row.sessions.append(session)
    return [*rows.values(), *sorted(others.values(), key=lambda r: r.username)]


def _booking_form(page: Page, data: Any = None) -> BookingForm:
    usable = [r for r in page.rooms if r.retired_at is None and r.active]
    return BookingForm(
        data,
        visits=page.bookable,
        rooms=usable,
        therapists=page.therapists,
        zone=page.zone,
        visit_labels=_visit_labels(page.bookable, page.zone),
    )


def _render(
    request: HttpRequest,
    page: Page,
    *,
    status: int = 200,
    booking_form: BookingForm | None = None,
    booking_error: str | None = None,
    window_warning: str | None = None,
    room_form: RoomCreateForm | None = None,
    room_error: str | None = None,
    page_error: str | None = None,
    retire_forms: dict[int, RoomRetireForm] | None = None,
    retire_error: tuple[int, str] | None = None,
) -> HttpResponse:
    user = request.user
    site, week = page.site, page.week
    may_configure = access.may_configure(user, site.pk)
    may_book = access.has_role(user, site.pk, SCHEDULE)
    # A refusal of a form the role does not see (a hand-made request) is shown at the top of the page.
    if booking_error and not may_book:
        page_error, booking_error = booking_error, None
    if room_error and not may_configure:
        page_error, room_error = room_error, None
    if retire_error and not may_configure:
        page_error, retire_error = retire_error[1], None
    retire_forms = retire_forms or {}
    rooms = [(room, retire_forms.get(room.pk) or RoomRetireForm(prefix=f"retire-{room.pk}")) for room in page.rooms]
    context = {
        "site": site,
        "zone": page.zone.key,
        "week": week,
        "days": week.days,
        "last_day": week.days[-1],
        "site_choices": [(s.code, f"{s.code} · {s.name}") for s in page.sites],
        "week_error": page.week_error,
        "previous_url": calendar_url(site, week.monday - dt.timedelta(days=7)),
        "next_url": calendar_url(site, week.monday + dt.timedelta(days=7)),
        "this_week_url": calendar_url(site),
        "here": calendar_url(site, week.monday),
        "room_rows": _room_rows(page),
        "therapist_rows": _therapist_rows(page),
        "session_count": len(page.sessions),
        # The forms show where the role may use them; the services check again.
        "may_book": may_book,
        "page_error": page_error,
        "booking_form": booking_form or _booking_form(page),
        "booking_error": booking_error,
        "window_warning": window_warning,
        "may_configure": may_configure,
        "rooms": rooms,
        "room_form": room_form or RoomCreateForm(),
        "room_error": room_error,
        "retire_error": retire_error,
    }
    return render(request, "dashboard/calendar/calendar.html", context, status=status)


@staff_page
@require_GET
def calendar(request: HttpRequest) -> HttpResponse:
    page = _load(request)
    return _render(request, page, status=400 if page.week_error else 200)


def _window_warning(visit: Visit, start: dt.datetime, zone: zoneinfo.ZoneInfo) -> str | None:
    """Why a session on this day needs a confirmation: it starts (site date) outside the visit's window. The API
    books such a session as asked, and completing it records an out-of-window deviation; the page asks first."""
    if visit.window_start is None or visit.window_end is None:
        return None
    day = start.astimezone(zone).date()
    if not days_outside(day, visit.window_start, visit.window_end):
        return None
    return _(
        "The session would start on %(day)s, outside the window of %(visit)s (%(start)s to %(end)s, site dates). "
        "Tick “Book outside the window” to book it all the same: completing it outside the window records a "
        "protocol deviation."
    ) % {
        "day": day.isoformat(),
        "visit": visit.code,
        "start": visit.window_start.isoformat(),
        "end": visit.window_end.isoformat(),
    }


@staff_page
@require_POST
def book(request: HttpRequest) -> HttpResponse:
    page = _load(request)
    form = _booking_form(page, request.POST)
    if not form.is_valid():
        return _render(request, page, status=400, booking_form=form)
    visit, room = form.chosen_visit(), form.chosen_room()
    assert visit is not None and room is not None  # both are required choices
    start: dt.datetime = form.cleaned_data["start"]
    warning = _window_warning(visit, start, page.zone)
    if warning and not form.cleaned_data["outside_window"]:
        return _render(request, page, status=400, booking_form=form, window_warning=warning)
    try:
        # As the API does: the role may schedule visits at the site, then the one service that books.
        access.require_role(request.user, page.site.pk, SCHEDULE, "schedule visits")
        booked, warnings = scheduling_services.visit_schedule(
            visit=visit,
            start=start,
            end=None,
            room=room,
            staff=form.cleaned_data["therapists"],
            by=request.user,
            reason=form.cleaned_data["reason"].strip() or None,
        )
    except ServiceError as exc:
        for name, problems in exc.field_errors.items():
            target = _BOOKING_FIELDS.get(name)
            for problem in problems:
                if target and problem != exc.message:
                    form.add_error(target, problem)
        return _render(
            request, page, status=exc.status_code, booking_form=form, booking_error=exc.message, window_warning=warning
        )
    assert booked.scheduled_start is not None
    messages.success(
        request,
        _("Booked %(visit)s of %(participant)s on %(day)s, %(span)s, in %(room)s with %(therapists)s.")
        % {
            "visit": booked.code,
            "participant": booked.participant.participant_id,
            "day": booked.scheduled_start.astimezone(page.zone).date().isoformat(),
            "span": _span(booked.scheduled_start, booked.scheduled_end, page.zone),
            "room": room.name,
            "therapists": ", ".join(form.cleaned_data["therapists"]),
        },
    )
    for text in warnings:
        messages.warning(request, text)
    day = booked.scheduled_start.astimezone(page.zone).date()
    return redirect(calendar_url(page.site, Week.containing(day, page.zone).monday))


@staff_page
@require_POST
def room_create(request: HttpRequest) -> HttpResponse:
    page = _load(request)
    form = RoomCreateForm(request.POST)
    if not form.is_valid():
        return _render(request, page, status=400, room_form=form)
    try:
        room = scheduling_services.room_create(
            site=page.site,
            name=form.cleaned_data["name"],
            overnight_capable=form.cleaned_data["overnight_capable"],
            by=request.user,
        )
    except ServiceError as exc:
        return _render(request, page, status=exc.status_code, room_form=form, room_error=exc.message)
    messages.success(request, _("Room %(name)s created.") % {"name": room.name})
    return redirect(f"{calendar_url(page.site, page.week.monday)}#rooms")


@staff_page
@require_POST
def room_retire(request: HttpRequest, room_id: int) -> HttpResponse:
    page = _load(request)
    room = scheduling_selectors.calendar_room_get(request.user, page.site.pk, room_id)  # another site's room: 404
    form = RoomRetireForm(request.POST, prefix=f"retire-{room.pk}")
    if not form.is_valid():
        return _render(request, page, status=400, retire_forms={room.pk: form})
    try:
        scheduling_services.room_retire(room=room, reason=form.cleaned_data["reason"], by=request.user)
    except ServiceError as exc:
        return _render(
            request, page, status=exc.status_code, retire_forms={room.pk: form}, retire_error=(room.pk, exc.message)
        )
    messages.success(request, _("Room %(name)s retired.") % {"name": room.name})
    return redirect(f"{calendar_url(page.site, page.week.monday)}#rooms")
