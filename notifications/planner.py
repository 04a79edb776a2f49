"""The planner: which messages a participant's current state calls for, and when. Pure (no database, no clock):
services.notifications_reconcile gathers the state, calls ``plan`` and diffs the result against the outbox.

Reconciling from state rather than patching queued messages is what keeps reminders right when plans change: a moved
visit simply plans different keys, and the rows for the old ones are cancelled.

Times: offsets are applied in the recipient's local wall-clock time, so "48 h before a 10:00 visit" is 10:00 two days
earlier even across a daylight-saving change; a message that falls in quiet hours moves to the first allowed minute
(08:00 local by default).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from notifications.rules import QuietHours, Rules
from scheduling.protocol import VisitKind

UTC = dt.UTC
# Scheduling's Visit.Status values the plan looks at (the planner imports no models: it is pure).
SCHEDULED = "scheduled"
NOT_HAPPENING = ("cancelled", "missed")


@dataclass(frozen=True)
class VisitState:
    id: int
    code: str
    kind: str
    status: str  # scheduling's Visit.Status values
    target_date: dt.date | None = None
    scheduled_start: dt.datetime | None = None
    occurred_at: dt.datetime | None = None


# A link sent at a staff member's request stands for the questionnaire reminders nominally due up to a day after it:
# a participant who opened the link was just reminded; later reminders still go while the questionnaire is open.
LINK_REQUEST_COVERS = dt.timedelta(days=1)


@dataclass(frozen=True)
class QuestionnaireGroup:
    """A visit's self-report questionnaires that can still be answered (they share one participant link)."""

    visit_id: int
    opens_at: dt.datetime
    closes_at: dt.datetime
    # When a staff member last asked for the link to be sent (a message of its own): the reminders it makes redundant
    # (those nominally due before it, or within LINK_REQUEST_COVERS after it) are not sent on top of it.
    link_requested_at: dt.datetime | None = None


@dataclass(frozen=True)
class OverdueGroup:
    """A visit whose administrations (self-report or clinician) are not completed yet."""

    visit_id: int
    visit_code: str
    target_date: dt.date
    count: int
    # The visit as a blinded recipient sees it (scheduling.blinded_view): its neutral code, or None when their
    # schedule does not list it (an arm's own session, a visit whose date would tell the arm): they are not told.
    blinded_code: str | None = None


@dataclass(frozen=True)
class ParticipantState:
    participant_id: int
    active: bool  # False once withdrawn, completed, lost or screen-failed: no participant messages then
    time_zone: str  # the participant's (contact's, else the site's)
    site_time_zone: str
    channel: str | None  # the channel to use (preferred, else the one with an address); None: unreachable
    language: str
    visits: tuple[VisitState, ...] = ()
    questionnaires: tuple[QuestionnaireGroup, ...] = ()
    overdue: tuple[OverdueGroup, ...] = ()
    coordinators: tuple[int, ...] = ()  # user ids to escalate to (with an e-mail address)
    blinded_recipients: tuple[int, ...] = ()  # those of them who may not see the participant's arm
    # (user id, language) of each coordinator: staff mail is written in the language the reader chose.
    staff_languages: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Wanted:
    key: str
    template: str
    recipient_user_id: int | None
    channel: str
    language: str
    nominal_at: dt.datetime
    due_at: dt.datetime
    context: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


# --- time helpers ----------------------------------------------------------------------------------------------------


def iso(instant: dt.datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shift(anchor: dt.datetime, delta: dt.timedelta, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """``anchor + delta`` in local wall-clock time, as a UTC instant. Python's aware arithmetic within one zone is
    wall-clock arithmetic; the round trip through UTC resolves a wall time that falls in a DST gap."""
    local = anchor.astimezone(tz) + delta
    return local.astimezone(UTC).astimezone(tz).astimezone(UTC)


def _at(day: dt.date, t: dt.time, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    # The round trip turns a wall time inside a DST gap into the first real instant after it.
    return dt.datetime.combine(day, t, tzinfo=tz).astimezone(UTC).astimezone(tz).astimezone(UTC)


def next_allowed(instant: dt.datetime, tz: zoneinfo.ZoneInfo, quiet: QuietHours) -> dt.datetime:
    """``instant`` itself if it lies outside quiet hours in ``tz``, else the first minute after them."""
    local = instant.astimezone(tz)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return instant.astimezone(UTC)
    day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        day += dt.timedelta(days=1)  # evening part of a window that spans midnight: ends tomorrow morning
    return _at(day, quiet.end, tz)


def avoid_days(
    instant: dt.datetime, tz: zoneinfo.ZoneInfo, quiet: QuietHours, blocked: frozenset[dt.date]
) -> dt.datetime:
    """Move ``instant`` off blocked local dates (dosing days) to the first allowed minute of the next free day."""
    for _ in range(60):
        local = instant.astimezone(tz)
        if local.date() not in blocked:
            return instant
        instant = next_allowed(_at(local.date() + dt.timedelta(days=1), dt.time(0, 0), tz), tz, quiet)
    return instant


def dosing_days(visits: Iterable[VisitState], tz: zoneinfo.ZoneInfo) -> frozenset[dt.date]:
    """Local dates of dosing sessions that happen or are planned: the actual date if done, else the booked slot's
    date, else the plan's target date."""
    days = set()
    for v in visits:
        if v.kind != VisitKind.DOSING or v.status in NOT_HAPPENING:
            continue
        when = v.occurred_at or v.scheduled_start
        if when is not None:
            days.add(when.astimezone(tz).date())
        elif v.target_date is not None:
            days.add(v.target_date)
    return frozenset(days)


# --- the plan ---------------------------------------------------------------------------------------------------------


def _series(candidates: list[Wanted], now: dt.datetime) -> list[Wanted]:
    """Of a series (one rule's occurrences for one anchor) keep no message that a later one has already overtaken:
    after an outage or a late plan the participant gets the latest reminder once, not a burst of stale ones."""
    candidates = sorted(candidates, key=lambda w: w.due_at)
    return [w for i, w in enumerate(candidates) if not (i + 1 < len(candidates) and candidates[i + 1].due_at <= now)]


def plan(state: ParticipantState, rules: Rules, now: dt.datetime) -> list[Wanted]:
    wanted: list[Wanted] = []
    tz = zoneinfo.ZoneInfo(state.time_zone)
    site_tz = zoneinfo.ZoneInfo(state.site_time_zone)
    quiet = rules.quiet_hours
    if state.active and state.channel:
        # Visit reminders: before a booked slot, never after it has begun.
        for v in state.visits:
            if v.status != SCHEDULED or v.scheduled_start is None or v.kind not in rules.visit_kinds:
                continue
            if now >= v.scheduled_start:
                continue
            series = []
            for offset in rules.visit_before:
                nominal = shift(v.scheduled_start, -offset.delta, tz)
                due = next_allowed(nominal, tz, quiet)
                if due >= v.scheduled_start:
                    continue  # pushed past the visit by quiet hours: it would only confuse
                series.append(
                    Wanted(
                        key=f"visit:{v.id}:{offset.code}:{iso(v.scheduled_start)}",
                        template="visit_reminder",
                        recipient_user_id=None,
                        channel=state.channel,
                        language=state.language,
                        nominal_at=nominal,
                        due_at=due,
                        context={
                            "visit_id": v.id,
                            "starts_at": iso(v.scheduled_start),
                            "rule": offset.code,
                            "series": f"visit:{v.id}:{iso(v.scheduled_start)}",
                        },
                    )
                )
            wanted += _series(series, now)
        # Questionnaire reminders: from the moment the window opens until it closes or all are answered.
        blocked = dosing_days(state.visits, tz) if rules.skip_dosing_days else frozenset()
        for q in state.questionnaires:
            if now > q.closes_at:
                continue
            series = []
            for offset in rules.questionnaire_after_open:
                nominal = shift(q.opens_at, offset.delta, tz)
                if q.link_requested_at is not None and nominal <= q.link_requested_at + LINK_REQUEST_COVERS:
                    continue  # the participant was just sent the link at a staff member's request
                due = avoid_days(next_allowed(nominal, tz, quiet), tz, quiet, blocked)
                if due > q.closes_at:
                    continue
                series.append(
                    Wanted(
                        key=f"questionnaire:{q.visit_id}:{offset.code}:{iso(q.opens_at)}",
                        template="questionnaire_reminder",
                        recipient_user_id=None,
                        channel=state.channel,
                        language=state.language,
                        nominal_at=nominal,
                        due_at=due,
                        context={
                            "visit_id": q.visit_id,
                            "closes_at": iso(q.closes_at),
                            "rule": offset.code,
                            "series": f"questionnaire:{q.visit_id}:{iso(q.opens_at)}",
                        },
                    )
                )
            wanted += _series(series, now)
    # Coordinator escalation: a visit's assessments still outstanding N days after its target date (site time).
    if state.active and rules.escalation_overdue_days is not None:
        for o in state.overdue:
            nominal = _at(o.target_date + dt.timedelta(days=rules.escalation_overdue_days), dt.time(0, 0), site_tz)
            due = next_allowed(nominal, site_tz, quiet)
            languages = dict(state.staff_languages)
            for user_id in state.coordinators:
                code = o.visit_code
                if user_id in state.blinded_recipients:
                    if o.blinded_code is None:
                        continue  # a visit their blinded schedule does not show
                    code = o.blinded_code
                wanted.append(
                    Wanted(
                        key=f"overdue:{o.visit_id}:u{user_id}:{o.target_date.isoformat()}",
                        template="coordinator_overdue",
                        recipient_user_id=user_id,
                        channel="email",
                        language=languages.get(user_id, "en"),
                        nominal_at=nominal,
                        due_at=due,
                        context={"visit_id": o.visit_id, "visit_code": code, "count": o.count},
                    )
                )
    return wanted


def recheck_at(state: ParticipantState, wanted: Iterable[Wanted], now: dt.datetime) -> dt.datetime | None:
    """The first instant after ``now`` at which ``plan`` could answer differently for the same state: a wanted
    message falls due (it overtakes earlier ones of its series), a booked visit begins (no more reminders for it), a
    questionnaire window closes. Before then, re-planning unchanged inputs yields the same messages."""
    instants = [w.due_at for w in wanted]
    instants += [v.scheduled_start for v in state.visits if v.status == SCHEDULED and v.scheduled_start is not None]
    instants += [q.closes_at for q in state.questionnaires]
    return min((t for t in instants if t > now), default=None)
