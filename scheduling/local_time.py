"""Local dates and times for scheduling: which calendar day an instant falls on where the participant or the site
is, how a booked span reads, and how long an overnight stay keeps its room. Pure functions, no database.

Plans are kept in local calendar dates because "which day" depends on where the participant lives, not on UTC."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Protocol

__all__ = ["OVERNIGHT_UNTIL", "days_outside", "format_span", "local_date", "overnight_room_end", "zone_of"]

# An overnight stay keeps the room until this local time on the next morning.
OVERNIGHT_UNTIL = dt.time(9, 0)


class _Zoned(Protocol):
    @property
    def time_zone(self) -> str: ...


def zone_of(holder: _Zoned) -> zoneinfo.ZoneInfo:
    """The time zone of a participant or a site."""
    return zoneinfo.ZoneInfo(holder.time_zone)


def local_date(instant: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.date:
    return instant.astimezone(tz).date()


def days_outside(day: dt.date, window_start: dt.date, window_end: dt.date) -> int:
    """How far ``day`` lies outside the window: negative = early, positive = late, 0 = inside."""
    if day < window_start:
        return (day - window_start).days
    if day > window_end:
        return (day - window_end).days
    return 0


def format_span(start: dt.datetime, end: dt.datetime, tz: zoneinfo.ZoneInfo) -> str:
    """'2026-03-30 09:00-17:00' in ``tz``; the end carries its date when it falls on another day."""
    s, e = start.astimezone(tz), end.astimezone(tz)
    tail = e.strftime("%H:%M") if e.date() == s.date() else e.strftime("%Y-%m-%d %H:%M")
    return f"{s:%Y-%m-%d %H:%M}-{tail}"


def overnight_room_end(end: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """When a session ending at ``end`` with an overnight stay frees its room: 09:00 local the next morning."""
    morning = dt.datetime.combine(end.astimezone(tz).date() + dt.timedelta(days=1), OVERNIGHT_UNTIL, tz)
    return max(end, morning)
