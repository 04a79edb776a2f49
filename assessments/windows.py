"""When an administration may be answered: its window as instants, and the status the clock gives it. Pure.

Stored statuses change only on writes (a draft saved, a response stored, a visit cancelled, a withdrawal). That a
self-report questionnaire's window has closed is a fact of the clock, not of the row, so "expired" is computed here,
at read time, and never written: a read must not write.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from assessments.models import Administration
from scheduling.models import Visit

A = Administration.Status
SELF = Administration.Respondent.SELF
DONE = frozenset({A.COMPLETED, A.NOT_APPLICABLE})
ANSWERABLE = frozenset({A.DUE, A.IN_PROGRESS})
# The last instant of a local day: a window that ends on a date stays open through that whole date.
END_OF_DAY = dt.time(23, 59, 59, 999999)


def window_bounds(visit: Visit, tz_name: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The visit window as instants: 00:00 on window_start to 23:59:59.999999 on window_end, local to the participant
    (a participant in New York and one in Portland both get their whole last day)."""
    if visit.window_start is None or visit.window_end is None:
        return None, None
    tz = zoneinfo.ZoneInfo(tz_name)
    opens = dt.datetime.combine(visit.window_start, dt.time.min, tzinfo=tz)
    closes = dt.datetime.combine(visit.window_end, END_OF_DAY, tzinfo=tz)
    return opens, closes


def administration_status(adm: Administration, now: dt.datetime) -> str:
    """The status to show and act on at ``now``: the stored one, except that a self-report administration whose
    window has closed is expired. Staff may enter a clinician rating late (scheduling records the deviation), so those
    never expire."""
    if adm.status in DONE:
        return adm.status
    if adm.respondent == SELF and adm.closes_at is not None and now > adm.closes_at:
        return A.EXPIRED
    return A.IN_PROGRESS if adm.draft_answers else A.DUE


def is_open(adm: Administration, now: dt.datetime) -> bool:
    """May the administration be answered at ``now``?"""
    return (
        administration_status(adm, now) in ANSWERABLE
        and adm.opens_at is not None
        and adm.opens_at <= now
        and (adm.closes_at is None or now <= adm.closes_at)
    )
