"""Scheduling reads, scoped by the acting user's sites. No read here joins the allocation: visit codes are identical
between blinded arms, so a visit list reveals nothing about the arm, and nothing here may add it.

Every function here is a pure read: nothing creates a row (a shipped protocol is stored by the writers that need it,
see ``services.protocol_version_ensure``)."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404

from participants import selectors as participant_selectors
from participants.access import Actor, site_ids_for
from participants.models import Participant
from scheduling import hooks
from scheduling.models import ParticipantSchedule, ProtocolDeviation, ProtocolVersion, Room, Visit
from scheduling.protocol import (
    Protocol,
    ProtocolError,
    VisitKind,
    load_protocol_file,
    parse_protocol,
    shipped_protocol_paths,
)


def _with_display(qs: QuerySet[Visit]) -> QuerySet[Visit]:
    # Three queries whatever the page size: visits (+ participant, site, room, version), then staff usernames.
    return qs.select_related("participant__site", "participant__study", "room", "protocol_version").prefetch_related(
        Prefetch("staff", queryset=get_user_model().objects.only("id", "username").order_by("username"))
    )


def _listed(qs: QuerySet[Visit]) -> QuerySet[Visit]:
    """For the home page's worklists: as ``_with_display``, without the protocol's definition (a large JSON document
    no list shows, decoded once per row otherwise)."""
    return _with_display(qs).defer("protocol_version__definition")


def visits_for(user: Actor) -> QuerySet[Visit]:
    return _with_display(Visit.objects.filter(participant__site_id__in=site_ids_for(user)))


def visit_get(user: Actor, visit_id: int) -> Visit:
    """One visit, or Http404 when it does not exist or lies outside the user's sites (the two look the same)."""
    return get_object_or_404(visits_for(user), pk=visit_id)


def visits_of(participant: Participant) -> QuerySet[Visit]:
    return _with_display(Visit.objects.filter(participant=participant)).order_by("target_date", "scheduled_start", "id")


def visit_of(participant: Participant, visit_id: int) -> Visit | None:
    """The participant's visit with that id, or None when the id names no visit of theirs."""
    return Visit.objects.filter(pk=visit_id, participant=participant).first()


def site_calendar_visits(site_id: int) -> QuerySet[Visit]:
    """The sessions that hold a slot at a site: scheduled and completed visits (a completed session stays on the
    calendar as a record of the time it used); planned, missed and cancelled ones hold no slot."""
    return _with_display(
        Visit.objects.filter(
            participant__site_id=site_id,
            status__in=[Visit.Status.SCHEDULED, Visit.Status.COMPLETED],
            scheduled_start__isnull=False,
        )
    ).order_by("scheduled_start", "id")


def staff_calendar_visits(user: Actor) -> QuerySet[Visit]:
    """The sessions the user is booked for at the user's sites (none for the system or an anonymous caller)."""
    if user is None or user.pk is None:
        return Visit.objects.none()
    return _with_display(
        Visit.objects.filter(
            staff__id=user.pk,
            participant__site_id__in=site_ids_for(user),
            status__in=[Visit.Status.SCHEDULED, Visit.Status.COMPLETED],
            scheduled_start__isnull=False,
        )
    ).order_by("scheduled_start", "id")


def deviations_for(user: Actor) -> QuerySet[ProtocolDeviation]:
    return ProtocolDeviation.objects.filter(participant__site_id__in=site_ids_for(user)).select_related(
        "participant__site", "visit", "recorded_by"
    )


def deviation_get(user: Actor, deviation_id: int) -> ProtocolDeviation:
    """One deviation, or Http404 when it does not exist or lies outside the user's sites."""
    return get_object_or_404(deviations_for(user), pk=deviation_id)


def deviations_of(user: Actor, participant: Participant) -> QuerySet[ProtocolDeviation]:
    """One participant's deviations, as the user may see them."""
    return deviations_for(user).filter(participant=participant)


def rooms_for(user: Actor) -> QuerySet[Room]:
    return Room.objects.filter(site_id__in=site_ids_for(user)).select_related("site")


# --- reads for exports ---


def visits_at_sites(site_ids: Collection[int], study_ids: Collection[int] | None = None) -> QuerySet[Visit]:
    """Visits of participants at these sites (and of these studies, if given); unordered, nothing joined."""
    qs = Visit.objects.filter(participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(participant__study_id__in=study_ids)
    return qs


def deviations_at_sites(
    site_ids: Collection[int], study_ids: Collection[int] | None = None
) -> QuerySet[ProtocolDeviation]:
    """Protocol deviations of participants at these sites (and of these studies, if given); unordered."""
    qs = ProtocolDeviation.objects.filter(participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(participant__study_id__in=study_ids)
    return qs


# --- reads for notifications ---


def participant_visits(participant_pk: int) -> QuerySet[Visit]:
    """Every visit of one participant, whatever its status, in plan order. No user scoping: the reminder planner runs
    as the system."""
    return Visit.objects.filter(participant_id=participant_pk)


def visits_by_pk(visit_pks: set[int]) -> dict[int, Visit]:
    """The visits with these primary keys, by key (one query); missing ones are simply absent."""
    return Visit.objects.in_bulk(visit_pks)


def room_get(user: Actor, room_id: int) -> Room:
    """One room, or Http404 when it does not exist or lies outside the user's sites."""
    return get_object_or_404(rooms_for(user), pk=room_id)


def room_named(site_id: int, name: str) -> Room | None:
    """The site's room with that name (retired ones included: booking one is refused with a message)."""
    return Room.objects.filter(site_id=site_id, name=name).first()


def protocol_version_latest(code: str) -> ProtocolVersion | None:
    """The latest stored version of ``code``, or None when none is stored."""
    return ProtocolVersion.objects.filter(code=code).order_by("-version").first()


def stored_protocol_problems() -> list[str]:
    """Every stored version that no longer validates (e.g. the instrument list changed), as '<code vN>: <problem>'."""
    problems = []
    known = hooks.known_instrument_codes(stored=True)
    for row in ProtocolVersion.objects.order_by("code", "version"):
        try:
            parse_protocol(row.definition, known_instruments=known)
        except ProtocolError as exc:
            problems += [f"{row}: {e}" for e in exc.errors]
    return problems


# --- reads for dashboard ---

# A visit still to be done: neither completed nor missed nor cancelled.
_NOT_DONE = (Visit.Status.PLANNED, Visit.Status.SCHEDULED)


@dataclass(frozen=True)
class SiteDay:
    """A site's calendar day at one instant ("today" there), with the site's zone to turn local days into instants."""

    day: dt.date
    zone: zoneinfo.ZoneInfo

    def start(self, offset_days: int = 0) -> dt.datetime:
        """The instant the local day ``offset_days`` after this one begins (midnight in the site's zone)."""
        return dt.datetime.combine(self.day + dt.timedelta(days=offset_days), dt.time.min, self.zone)


def site_days(user: Actor, now: dt.datetime) -> dict[int, SiteDay]:
    """Each of the user's sites' "today" at ``now``, by site id: a day is a local day, so two sites can be on
    different dates at the same instant."""
    out: dict[int, SiteDay] = {}
    for site in participant_selectors.sites_for(user):
        zone = zoneinfo.ZoneInfo(site.time_zone)
        out[site.pk] = SiteDay(day=now.astimezone(zone).date(), zone=zone)
    return out


def _per_site(user: Actor, days: Mapping[int, SiteDay], condition: Callable[[SiteDay], Q]) -> Q:
    """One condition per site the user may see, OR-ed: a single query however many sites (a site the user may not
    see is dropped, so a caller cannot widen the scope by passing it)."""
    allowed = site_ids_for(user)
    q = Q(pk__in=[])
    for site_id, site_day in days.items():
        if site_id in allowed:
            q |= Q(participant__site_id=site_id) & condition(site_day)
    return q


def visits_today(user: Actor, days: Mapping[int, SiteDay]) -> QuerySet[Visit]:
    """Visits booked to start during the site's today (cancelled ones left out), by start."""
    condition = _per_site(user, days, lambda d: Q(scheduled_start__gte=d.start(), scheduled_start__lt=d.start(1)))
    return _listed(Visit.objects.filter(condition).exclude(status=Visit.Status.CANCELLED)).order_by(
        "scheduled_start", "participant__participant_id", "id"
    )


def visits_window_closing(user: Actor, days: Mapping[int, SiteDay], within_days: int = 3) -> QuerySet[Visit]:
    """Visits not yet done whose window closes today or within ``within_days`` days of the site's today."""
    condition = _per_site(
        user,
        days,
        lambda d: Q(window_end__gte=d.day, window_end__lte=d.day + dt.timedelta(days=within_days)),
    )
    return _listed(Visit.objects.filter(condition, status__in=_NOT_DONE)).order_by(
        "window_end", "participant__participant_id", "id"
    )


def visits_overdue(user: Actor, days: Mapping[int, SiteDay]) -> QuerySet[Visit]:
    """Visits whose window closed before the site's today, not done, with no protocol deviation recorded."""
    condition = _per_site(user, days, lambda d: Q(window_end__lt=d.day))
    deviation = ProtocolDeviation.objects.filter(visit_id=OuterRef("pk"))
    return _listed(Visit.objects.filter(condition, status__in=_NOT_DONE).filter(~Exists(deviation))).order_by(
        "window_end", "participant__participant_id", "id"
    )


def dosing_sessions_ahead(user: Actor, days: Mapping[int, SiteDay], within_days: int = 14) -> QuerySet[Visit]:
    """Booked dosing sessions starting from the site's today up to the end of the ``within_days``-th day after it,
    with their room and therapists (the dyad)."""
    condition = _per_site(
        user, days, lambda d: Q(scheduled_start__gte=d.start(), scheduled_start__lt=d.start(within_days + 1))
    )
    return _listed(Visit.objects.filter(condition, kind=VisitKind.DOSING, status=Visit.Status.SCHEDULED)).order_by(
        "scheduled_start", "id"
    )


# --- reads for the dashboard matrix ---


def study_protocol(protocol_code: str) -> Protocol | None:
    """The protocol a study's visits follow: the latest stored version of ``protocol_code``, else the shipped file of
    that name (parsed, never stored: a read stores nothing); None when it is neither stored nor shipped."""
    if not protocol_code:
        return None
    row = protocol_version_latest(protocol_code)
    if row is not None:
        return row.protocol()
    return _shipped_protocol(protocol_code)


@functools.cache
def _shipped_protocol(code: str) -> Protocol | None:
    # The shipped files do not change while the process runs; parsing one validates it against the JSON schema.
    path = next((p for p in shipped_protocol_paths() if p.stem == code), None)
    return load_protocol_file(path) if path is not None else None


def matrix_visits(participant_pks: Collection[int]) -> QuerySet[Visit]:
    """The protocol visits (unscheduled ones left out) of these participants, each annotated with
    ``out_of_window_deviation``: whether an out-of-window deviation is recorded for it. One query."""
    deviation = ProtocolDeviation.objects.filter(visit_id=OuterRef("pk"), type=ProtocolDeviation.Type.OUT_OF_WINDOW)
    return (
        Visit.objects.filter(participant_id__in=list(participant_pks), unscheduled=False)
        .only("id", "participant_id", "code", "name", "status", "window_start", "window_end")
        .annotate(out_of_window_deviation=Exists(deviation))
        .order_by("participant_id", "id")
    )


def participants_with_visit(participants: QuerySet[Participant], code: str) -> QuerySet[Participant]:
    """Those of ``participants`` that have the protocol visit ``code`` on their schedule (cancelled or not)."""
    return participants.filter(
        Exists(Visit.objects.filter(participant_id=OuterRef("pk"), code=code, unscheduled=False))
    )


# --- reads for the dashboard participant page ---


def study_day_zero(participant: Participant) -> dt.date | None:
    """Day 0 of the participant's study days, as the exports define it: the schedule's randomization date, else its
    enrollment date, else the local date (the participant's time zone) of randomization, else of enrollment; None
    before enrollment."""
    dates = (
        ParticipantSchedule.objects.filter(participant=participant)
        .values_list("randomization_date", "enrollment_date")
        .first()
    )
    for day in dates or ():
        if day is not None:
            found: dt.date = day
            return found
    zone = zoneinfo.ZoneInfo(participant.time_zone)
    for instant in (participant.randomized_at, participant.enrolled_at):
        if instant is not None:
            return instant.astimezone(zone).date()
    return None
