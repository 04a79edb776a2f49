"""Plausible clinical dates: the one rule every service applies to a date or time that staff enter.

A clinical date or time (a visit's completion, a consent signature, a withdrawal, an adverse event's onset and
resolution, a dosing session's times, a vital sign's measurement) lies

- not before the study's start: ``Study.start_date`` when the study sets it, else ``CLINICAL_DATES_FROM`` (a floor
  for every study, 2000-01-01 unless configured); a time is compared by its date in the site's zone;
- not in the future: a time may lie at most ``CLOCK_SKEW`` (5 minutes) ahead of the server's clock (the devices staff
  type on drift a little); a date at most today in the site's zone.

A booking (a visit's scheduled start) is planned ahead, so only the first half applies to it (``future=False``).
Prior medications may have started before the study: their start date is checked against the future only (by the
safety app), not here.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from typing import Protocol

from django.conf import settings
from django.utils import timezone

from trialsite.errors import ServiceError
from trialsite.fields import NO_OFFSET

CLOCK_SKEW = dt.timedelta(minutes=5)
FUTURE = "cannot be in the future"

Value = dt.date | dt.datetime | None


class _Study(Protocol):
    @property
    def start_date(self) -> dt.date | None: ...


class _Site(Protocol):
    @property
    def time_zone(self) -> str: ...


class _Participant(Protocol):
    @property
    def study(self) -> _Study: ...

    @property
    def site(self) -> _Site: ...


def earliest_date(study: _Study) -> dt.date:
    """The first day a clinical date of the study may fall on."""
    floor = dt.date.fromisoformat(settings.CLINICAL_DATES_FROM)
    return max(study.start_date, floor) if study.start_date is not None else floor


def date_errors(
    study: _Study,
    zone: zoneinfo.ZoneInfo | str,
    values: Mapping[str, Value],
    *,
    future: bool = True,
    now: dt.datetime | None = None,
) -> dict[str, list[str]]:
    """Field errors of the values given (None values are skipped). ``future=False`` allows a value ahead of now."""
    tz = zone if isinstance(zone, zoneinfo.ZoneInfo) else zoneinfo.ZoneInfo(zone)
    now = now or timezone.now()
    first = earliest_date(study)
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, dt.datetime):
            if timezone.is_naive(value):
                errors[name] = [NO_OFFSET]
                continue
            day = value.astimezone(tz).date()
            ahead = value > now + CLOCK_SKEW
        else:
            day = value
            ahead = value > now.astimezone(tz).date()
        if day < first:
            errors[name] = [f"cannot be before the study's start ({first.isoformat()})"]
        elif future and ahead:
            errors[name] = [FUTURE]
    return errors


def participant_date_errors(
    participant: _Participant, values: Mapping[str, Value], *, future: bool = True, now: dt.datetime | None = None
) -> dict[str, list[str]]:
    """``date_errors`` for one participant: their study, their site's zone."""
    return date_errors(participant.study, participant.site.time_zone, values, future=future, now=now)


def require_plausible(
    participant: _Participant, values: Mapping[str, Value], *, future: bool = True, now: dt.datetime | None = None
) -> None:
    """Raise a 400 naming each implausible field."""
    errors = participant_date_errors(participant, values, future=future, now=now)
    if errors:
        name, messages = next(iter(errors.items()))
        what = {FUTURE: "lies in the future", NO_OFFSET: "needs a time zone offset"}.get(
            messages[0], "lies before the study's start"
        )
        raise ServiceError(f"{name} {what}", field_errors=errors)
