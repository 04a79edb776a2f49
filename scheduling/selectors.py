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
from django.db.models import (
    Case,
    Count,
    DateField,
    DateTimeField,
    Exists,
    F,
    Func,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, NullIf, TruncDate
from django.http import Http404
from django.shortcuts import get_object_or_404

from participants import selectors as participant_selectors
from participants.access import Actor, site_ids_for
from participants.hooks import ProtocolFacts as ParticipantProtocolFacts
from participants.models import Participant
from scheduling import hooks
from scheduling.blinded_view import Lens
from scheduling.models import ParticipantSchedule, ProtocolDeviation, ProtocolVersion, Room, Visit
from scheduling.protocol import (
    ComparisonVisits,
    DosingDeclaration,
    ProhibitedMedication,
    Protocol,
    ProtocolError,
    VisitKind,
    load_protocol_file,
    parse_protocol,
    primary_comparison,
    shipped_protocol_paths,
)
from trialsite.errors import ServiceError


def _with_display(qs: QuerySet[Visit]) -> QuerySet[Visit]:
    # Three queries whatever the page size: visits (+ participant, site, room, version), then staff usernames.
    return qs.select_related("participant__site", "participant__study", "room", "protocol_version").prefetch_related(
        Prefetch("staff", queryset=get_user_model().objects.only("id", "username").order_by("username"))
    )


def _listed(qs: QuerySet[Visit]) -> QuerySet[Visit]:
    """For lists (the home page's worklists, the calendar): as ``_with_display``, without the protocol's definition
    (a large JSON document no list shows, decoded once per row otherwise)."""
    return _with_display(qs).defer("protocol_version__definition")


def visits_for(user: Actor) -> QuerySet[Visit]:
    return _with_display(Visit.objects.filter(participant__site_id__in=site_ids_for(user)))


def visits_listed_for(user: Actor) -> QuerySet[Visit]:
    """The visits list's rows: at the user's sites by the visit's own (copied) site, so that a site's list reads the
    visit table's (site, target date) index, without the protocol's definition (no list shows it)."""
    return _listed(Visit.objects.filter(site_id__in=site_ids_for(user)))


def visit_get(user: Actor, visit_id: int, *, staff: bool = True) -> Visit:
    """One visit, or Http404 when it does not exist, lies outside the user's sites or is one the user's blinded view
    of the schedule does not show (the three look the same; ``scheduling.blinded_view``). ``staff``: with the staff
    booked for it (one more query); a caller that shows none passes False.

    One query (two with the staff) for a visit the view could not hide whoever the participant's arm is, which is most
    of them: the blinded view's studies and protocol versions are read only for one it could hide."""
    qs = visits_for(user) if staff else _plain(Visit.objects.filter(participant__site_id__in=site_ids_for(user)))
    visit = get_object_or_404(qs, pk=visit_id)
    lens = Lens(user)
    if lens.may_hide(visit) and not lens.shown(Visit.objects.filter(pk=visit.pk)).exists():
        raise Http404("No Visit matches the given query.")
    return visit


def _plain(qs: QuerySet[Visit]) -> QuerySet[Visit]:
    # As ``_with_display``, without the staff.
    return qs.select_related("participant__site", "participant__study", "room", "protocol_version")


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
    """The deviations at the user's sites; for a blinded viewer, none about a visit the blinded schedule does not
    list with dates (``scheduling.blinded_view``: what it is, and when, would tell the arm)."""
    rows = ProtocolDeviation.objects.filter(participant__site_id__in=site_ids_for(user))
    lens = Lens(user)
    if lens.any_blinded():
        # Only the visits that have deviations are asked (read by id), not every visit of the trial.
        asked = ProtocolDeviation.objects.filter(visit_id__isnull=False).values("visit_id")
        rows = rows.exclude(visit_id__in=Visit.objects.filter(pk__in=asked).filter(lens.not_listed()).values("pk"))
    return rows.select_related("participant__site", "visit", "recorded_by")


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


def visit_staff_at_sites(
    site_ids: Collection[int], study_ids: Collection[int] | None = None
) -> QuerySet[Visit, tuple[int, int, int, str, int | None, int]]:
    """(visit id, participant pk, study id, visit kind, dosing number, staff user id) for every member of staff
    booked on a visit of participants at these sites: the exports' therapist dyads, in one query."""
    return (
        visits_at_sites(site_ids, study_ids)
        .filter(staff__isnull=False)
        .values_list("id", "participant_id", "participant__study_id", "kind", "dosing_number", "staff__id")
    )


def visit_codes_at_sites(
    site_ids: Collection[int], study_ids: Collection[int] | None, codes: Collection[str]
) -> QuerySet[Visit, tuple[int, str]]:
    """(participant pk, visit code) of the planned (not unscheduled) visits with these codes, one query."""
    return (
        visits_at_sites(site_ids, study_ids)
        .filter(code__in=codes, unscheduled=False)
        .values_list("participant_id", "code")
    )


def protocol_versions_of_participants(
    site_ids: Collection[int], study_ids: Collection[int] | None = None
) -> dict[int, ProtocolVersion]:
    """The protocol version each scheduled participant at these sites follows, by participant pk (two queries)."""
    schedules = ParticipantSchedule.objects.filter(participant__site_id__in=site_ids)
    if study_ids is not None:
        schedules = schedules.filter(participant__study_id__in=study_ids)
    pairs = list(schedules.values_list("participant_id", "protocol_version_id"))
    versions = ProtocolVersion.objects.in_bulk({v for _p, v in pairs})
    return {p: versions[v] for p, v in pairs}


def dosing_sessions_most() -> int:
    """The most dosing sessions any arm of any protocol (shipped or loaded) plans: the exports' dose columns."""
    shipped = [_shipped_protocol(path.stem) for path in shipped_protocol_paths()]
    protocols = [p for p in shipped if p is not None] + [pv.protocol() for pv in ProtocolVersion.objects.all()]
    return max((len(arm.dosing_numbers()) for p in protocols for arm in p.arms.values()), default=0)


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


def visits_by_participant(participant_pks: Collection[int]) -> dict[int, list[Visit]]:
    """``participant_visits`` for many participants at once, by participant (one query); those without visits are
    absent."""
    out: dict[int, list[Visit]] = {}
    for visit in Visit.objects.filter(participant_id__in=list(participant_pks)).order_by("participant_id", "id"):
        out.setdefault(visit.participant_id, []).append(visit)
    return out


def visits_by_pk(visit_pks: set[int]) -> dict[int, Visit]:
    """The visits with these primary keys, by key (one query); missing ones are simply absent."""
    return Visit.objects.in_bulk(visit_pks)


def room_get(user: Actor, room_id: int) -> Room:
    """One room, or Http404 when it does not exist or lies outside the user's sites."""
    return get_object_or_404(rooms_for(user), pk=room_id)


def room_named(site_id: int, name: str | None) -> Room | None:
    """The site's room with that name for a booking (retired ones included: booking one is refused with a message);
    None when no name is given, and a refusal naming the field when the site has no such room."""
    if not name:
        return None
    room = Room.objects.filter(site_id=site_id, name=name).first()
    if room is None:
        raise ServiceError("unknown room", field_errors={"room": [f"no room {name!r} at this site"]})
    return room


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
            q |= Q(site_id=site_id) & condition(site_day)
    return q


def _starting_between(days: Mapping[int, SiteDay], first: int, after: int) -> Q:
    """Every site's range at once (the earliest start to the latest end): said alongside the per-site condition, it
    changes no result but lets the database read the index's range instead of all of it (an OR of ranges, one per
    site, is a filter it applies row by row)."""
    if not days:
        return Q()
    return Q(
        scheduled_start__gte=min(d.start(first) for d in days.values()),
        scheduled_start__lt=max(d.start(after) for d in days.values()),
    )


def visits_today(user: Actor, days: Mapping[int, SiteDay]) -> QuerySet[Visit]:
    """Visits booked to start during the site's today (cancelled ones left out), by start."""
    condition = _per_site(user, days, lambda d: Q(scheduled_start__gte=d.start(), scheduled_start__lt=d.start(1)))
    condition &= _starting_between(days, 0, 1)
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
    if days:  # every site's range at once: see _starting_between
        condition &= Q(
            window_end__gte=min(d.day for d in days.values()),
            window_end__lte=max(d.day for d in days.values()) + dt.timedelta(days=within_days),
        )
    return _listed(Visit.objects.filter(condition, status__in=_NOT_DONE)).order_by(
        "window_end", "participant__participant_id", "id"
    )


def visits_overdue(user: Actor, days: Mapping[int, SiteDay]) -> QuerySet[Visit]:
    """Visits whose window closed before the site's today, not done, with no protocol deviation recorded."""
    condition = _per_site(user, days, lambda d: Q(window_end__lt=d.day))
    if days:  # every site's range at once: see _starting_between
        condition &= Q(window_end__lt=max(d.day for d in days.values()))
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
    condition &= _starting_between(days, 0, within_days + 1)
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


def protocol_facts(protocol_code: str) -> ParticipantProtocolFacts | None:
    """What participants reads of a study's protocol (registered as its protocol reader): the second unblinding
    approver's role, and whether the arms' visit lists differ. None when the protocol is unknown."""
    protocol = study_protocol(protocol_code)
    if protocol is None:
        return None
    all_codes = {code for arm in protocol.arms.values() for code in arm.codes}
    return ParticipantProtocolFacts(
        unblinding_second_approver_role=protocol.unblinding_second_approver_role,
        schedule_differs_by_arm=all_codes != set(protocol.shared_visit_codes()),
    )


def primary_comparison_visits(protocol_code: str) -> dict[str, ComparisonVisits]:
    """Arm code -> the baseline and endpoint visit codes of the primary comparison of a study's protocol (see
    ``study_protocol``); empty when the protocol is unknown or names no comparison. Exports and analyses read the
    primary change score through this. The visit codes alone reveal no one's arm: only joining them to a
    participant's allocation does, which stays the caller's (blinding-checked) business."""
    protocol = study_protocol(protocol_code)
    comparison = primary_comparison(protocol) if protocol is not None else None
    return dict(comparison.arms) if comparison is not None else {}


def visit_dosing_declaration(visit: Visit) -> DosingDeclaration | None:
    """The dosing declarations (vital-signs timepoints and alert thresholds) of the protocol a visit follows: the
    version the visit was planned under, else its study's protocol (see ``study_protocol``). None when the visit is
    not a dosing visit or the protocol declares none."""
    if visit.kind != VisitKind.DOSING:
        return None
    if visit.protocol_version is not None:
        protocol: Protocol | None = visit.protocol_version.protocol()
    else:
        protocol = study_protocol(visit.study.protocol_code)
    return protocol.dosing_session if protocol is not None else None


@functools.cache
def _shipped_protocol(code: str) -> Protocol | None:
    # The shipped files do not change while the process runs; parsing one validates it against the JSON schema.
    path = next((p for p in shipped_protocol_paths() if p.stem == code), None)
    return load_protocol_file(path) if path is not None else None


def prohibited_medications_of(participant: Participant) -> tuple[ProhibitedMedication, ...]:
    """The medication classes the participant's protocol prohibits before a dosing session, each with its washout:
    the version the participant follows, else (not yet scheduled) the study's protocol; empty when there is none.
    One query for a scheduled participant (the version row; its parsed form is cached)."""
    schedule = ParticipantSchedule.objects.filter(participant_id=participant.pk).select_related("protocol_version")
    row = schedule.first()
    if row is not None:
        return row.protocol_version.protocol().prohibited_medications
    protocol = study_protocol(participant.study.protocol_code)
    return protocol.prohibited_medications if protocol is not None else ()


def shipped_prohibited_classes() -> dict[str, list[str]]:
    """Protocol code -> the medication classes each shipped protocol file prohibits (files only, no database: the
    safety app's start-up check holds them to its class list). A file that does not parse is left to scheduling.E001."""
    out: dict[str, list[str]] = {}
    for path in shipped_protocol_paths():
        try:
            protocol = load_protocol_file(path)
        except ProtocolError:
            continue
        out[protocol.code] = [m.medication_class for m in protocol.prohibited_medications]
    return out


def matrix_visits(participant_pks: Collection[int]) -> QuerySet[Visit]:
    """The protocol visits (unscheduled ones left out) of these participants, each annotated with
    ``out_of_window_deviation``: whether an out-of-window deviation is recorded for it. One query."""
    deviation = ProtocolDeviation.objects.filter(visit_id=OuterRef("pk"), type=ProtocolDeviation.Type.OUT_OF_WINDOW)
    return (
        Visit.objects.filter(participant_id__in=list(participant_pks), unscheduled=False)
        .only(
            "id",
            "participant_id",
            "code",
            "name",
            "status",
            "window_start",
            "window_end",
            # What the blinded view reads to place a visit under its neutral face (scheduling.blinded_view).
            "site_id",
            "study_id",
            "protocol_version_id",
            "unscheduled",
            "kind",
            "dosing_number",
            "instruments",
            "duration_minutes",
            "staff_required",
            "overnight",
            "optional",
            "target_date",
            "scheduled_start",
            "scheduled_end",
            "occurred_at",
        )  # fmt: skip
        .annotate(out_of_window_deviation=Exists(deviation))
        .order_by("participant_id", "id")
    )


def participants_with_visit(participants: QuerySet[Participant], codes: str | Collection[str]) -> QuerySet[Participant]:
    """Those of ``participants`` that have one of the protocol visits ``codes`` on their schedule (cancelled or not)."""
    wanted = [codes] if isinstance(codes, str) else sorted(codes)
    return participants.filter(
        Exists(Visit.objects.filter(participant_id=OuterRef("pk"), code__in=wanted, unscheduled=False))
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


# --- reads for the dashboard (overview) ---


@dataclass(frozen=True)
class VisitAdherence:
    """One protocol visit's adherence across participants: ``due`` visits are those completed or whose window has
    closed (before the site's today) without being completed; ``in_window`` those completed on a day inside their
    window (the participant's local day, as the visit service judges it)."""

    code: str
    due: int
    completed: int
    in_window: int


def _occurred_local_day() -> Cast | TruncDate:
    """The calendar day a visit happened on where the participant is (their contact time zone, else the site's), as
    ``scheduling.local_time.local_date`` computes it in Python. SQLite (the embedded default) has no time zone
    database: there the UTC day stands in."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return TruncDate("occurred_at", tzinfo=dt.UTC)
    zone = Coalesce(NullIf(F("participant__contact__time_zone"), Value("")), F("participant__site__time_zone"))
    return Cast(Func(zone, F("occurred_at"), function="timezone", output_field=DateTimeField()), DateField())


def overview_visit_adherence(
    user: Actor, *, study_id: int, site_ids: Collection[int], codes: Collection[str], days: Mapping[int, SiteDay]
) -> dict[str, VisitAdherence]:
    """Adherence per protocol visit ``code`` among ``codes`` (only those: a caller hides the visits a viewer may not
    see) for the study's participants at ``site_ids`` (the user's only), judged against each site's today in
    ``days``. Cancelled and unscheduled visits are left out. One aggregate query; codes with no visit are absent."""
    site_ids = set(site_ids)
    shown = {sid: day for sid, day in days.items() if sid in site_ids}
    window_closed = _per_site(user, shown, lambda d: Q(window_end__lt=d.day))
    done = Q(status=Visit.Status.COMPLETED)
    rows = (
        Visit.objects.filter(_per_site(user, shown, lambda d: Q()), study_id=study_id)
        .filter(code__in=list(codes), unscheduled=False)
        .exclude(status=Visit.Status.CANCELLED)
        # The local day is worked out for completed visits only (the time zone conversion is the costly part of the
        # query: the others would compute it for nothing).
        .annotate(local_day=Case(When(done & Q(occurred_at__isnull=False), then=_occurred_local_day()), default=None))
        .order_by()
        .values("code")
        .annotate(
            due=Count("pk", filter=done | window_closed),
            completed=Count("pk", filter=done),
            in_window=Count(
                "pk",
                filter=done
                & Q(occurred_at__isnull=False, local_day__gte=F("window_start"), local_day__lte=F("window_end")),
            ),
        )
    )
    return {
        row["code"]: VisitAdherence(row["code"], int(row["due"]), int(row["completed"]), int(row["in_window"]))
        for row in rows
    }


# --- reads for the dashboard (calendar) ---

# The statuses of a dosing session that holds its slot on the calendar (see ``site_calendar_visits``).
_HOLDING_SLOT = (Visit.Status.SCHEDULED, Visit.Status.COMPLETED)


def calendar_rooms(user: Actor, site_id: int) -> QuerySet[Room]:
    """Every room of the site (retired ones included, for the sessions they held), by name; none outside the user's
    sites."""
    if site_id not in site_ids_for(user):
        return Room.objects.none()
    return Room.objects.filter(site_id=site_id).select_related("retired_by").order_by("name", "id")


def calendar_room_get(user: Actor, site_id: int, room_id: int) -> Room:
    """One room of the site, or Http404 when it does not exist, is another site's, or lies outside the user's
    sites."""
    return get_object_or_404(calendar_rooms(user, site_id).select_related("site"), pk=room_id)


def calendar_dosing_sessions(user: Actor, site_id: int, start: dt.datetime, end: dt.datetime) -> QuerySet[Visit]:
    """The site's dosing sessions holding a slot (scheduled or completed) that start in [start, end), by start, with
    their room and therapists. Three queries whatever the number; none outside the user's sites, and for a blinded
    viewer only those the blinded schedule lists (``scheduling.blinded_view``)."""
    if site_id not in site_ids_for(user):
        return Visit.objects.none()
    sessions = Visit.objects.filter(
        participant__site_id=site_id,
        kind=VisitKind.DOSING,
        status__in=_HOLDING_SLOT,
        scheduled_start__gte=start,
        scheduled_start__lt=end,
    )
    return _listed(Lens(user).listed(sessions)).order_by("scheduled_start", "participant__participant_id", "id")


def calendar_bookable_visits(
    user: Actor, site_id: int, first_day: dt.date, last_day: dt.date, start: dt.datetime, end: dt.datetime
) -> QuerySet[Visit]:
    """The site's dosing visits a booking form for the days ``first_day`` to ``last_day`` (from ``start`` to ``end``)
    may offer: those not done yet whose window meets those days (or that have no window), to book, and those booked to
    start in them, to move; by participant and dosing number. One query. Each row carries what an option's label and
    the form's checks read (participant id, code, status, window, booked start) and no more; the booking service reads
    the chosen visit again under its lock. (Any visit, in its window or not, is booked from its participant's page.)"""
    if site_id not in site_ids_for(user):
        return Visit.objects.none()
    meets = Q(window_start__lte=last_day, window_end__gte=first_day) | Q(window_start__isnull=True)
    booked_then = Q(scheduled_start__gte=start, scheduled_start__lt=end)
    return (
        Lens(user)
        .listed(Visit.objects.filter(site_id=site_id, kind=VisitKind.DOSING, status__in=_NOT_DONE))
        .filter(meets | booked_then)
        .select_related("participant")
        .only(
            "id",
            "participant_id",
            "participant__participant_id",
            "code",
            "kind",
            "dosing_number",
            "status",
            "window_start",
            "window_end",
            "scheduled_start",
            "scheduled_end",
        )
        .order_by("participant__participant_id", "dosing_number", "code", "id")
    )


# --- reads for the dashboard (links) ---


def arm_only_codes(protocol: Protocol | None) -> frozenset[str]:
    """The visit codes that only some arms of the protocol have: a blinded viewer who saw one would know the arm."""
    if protocol is None or not protocol.arms:
        return frozenset()
    codes = [frozenset(arm.codes) for arm in protocol.arms.values()]
    return frozenset.union(*codes) - frozenset.intersection(*codes)


def arm_only_visits_hidden(user: Actor) -> Q:
    """The condition naming the visits a list ordered or filtered by date leaves out for the user: at every site
    where the user may not see the study's arm, those the blinded view hides and those it shows without dates
    (``scheduling.blinded_view.Lens.not_listed``). A few queries per study the user sees, whatever the number of
    visits; a page with several visit lists reads it once and hands it to each."""
    return Lens(user).not_listed()


def without_arm_only_visits(user: Actor, qs: QuerySet[Visit], hidden: Q | None = None) -> QuerySet[Visit]:
    """``qs`` less the arm-only visits at every site where the user may not see the study's arm; ``hidden`` is
    ``arm_only_visits_hidden(user)`` when the caller has read it already."""
    return qs.exclude(arm_only_visits_hidden(user) if hidden is None else hidden)


def visits_needing_reschedule(user: Actor, days: Mapping[int, SiteDay], *, hidden: Q | None = None) -> QuerySet[Visit]:
    """Visits flagged for rescheduling (an earlier visit moved and this one's booking no longer fits), not done yet,
    at the user's sites, by target date (arm-only ones left out as ``without_arm_only_visits`` does, ``hidden``
    passed on to it)."""
    condition = _per_site(user, days, lambda d: Q())
    return without_arm_only_visits(
        user,
        _listed(Visit.objects.filter(condition, needs_reschedule=True, status__in=_NOT_DONE)).order_by(
            "target_date", "participant__participant_id", "id"
        ),
        hidden,
    )


def visits_with_questionnaires(
    user: Actor,
    days: Mapping[int, SiteDay],
    *,
    visit_ids: Collection[int],
    asked: Q,
    hidden: Q | None = None,
) -> tuple[list[int], list[int]]:
    """The visits among ``visit_ids`` (those with questionnaires the participant can answer now) at the user's
    sites whose participant meets ``asked`` (a condition on ``participant__``: those still asked to answer), as two
    lists of ids: those whose target date is the site's today or later (or none), and those whose target date has
    passed (late). Cancelled and missed visits are left out, and so are the arm-only visits a
    blinded viewer may not see (``hidden``, as ``without_arm_only_visits``). Each list is ordered by target date,
    window end, participant id and visit id.

    One query for both lists, of a few columns per visit: the home page counts each list and reads one page of each
    (``visits_listed_by_ids``), so the whole rows are read for the page only."""
    # The ids go as one array parameter (trialsite/lookups.py): there can be thousands.
    candidates = (
        Visit.objects.filter(_per_site(user, days, lambda d: Q()), pk__any=sorted(visit_ids))
        .filter(asked)
        .exclude(status__in=(Visit.Status.CANCELLED, Visit.Status.MISSED))
    )
    ordered = (
        without_arm_only_visits(user, candidates, hidden)
        .order_by("target_date", "window_end", "participant__participant_id", "id")
        .values_list("id", "site_id", "target_date")
    )
    due: list[int] = []
    late: list[int] = []
    for pk, site_id, target in ordered:
        (late if target is not None and target < days[site_id].day else due).append(pk)
    return due, late


def visits_listed_by_ids(ids: Collection[int]) -> QuerySet[Visit]:
    """The visits with these ids, with what a list row shows (a caller scoped the ids already, as
    ``visits_with_questionnaires`` does), in no particular order."""
    return _listed(Visit.objects.filter(pk__in=sorted(ids)))


# --- reads for the dashboard (actions) ---


def rooms_bookable_at(site_id: int) -> QuerySet[Room]:
    """The rooms of a site that may take a booking now (in use, not retired), by name."""
    return Room.objects.filter(site_id=site_id, active=True, retired_at__isnull=True).order_by("name")


def visit_inputs_by_participant(participant_pks: Collection[int]) -> dict[int, tuple[object, ...]]:
    """What the reminder planner reads of each participant's visits, as plain values (one query for the batch)."""
    rows = (
        Visit.objects.filter(participant_id__in=list(participant_pks))
        .order_by("participant_id", "id")
        .values_list("participant_id", "id", "code", "kind", "status", "target_date", "scheduled_start", "occurred_at")
    )
    out: dict[int, list[object]] = {}
    for participant, *visit in rows:
        out.setdefault(participant, []).append(tuple(visit))
    return {pk: tuple(visits) for pk, visits in out.items()}
