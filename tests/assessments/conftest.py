"""Fixtures for the assessments tests: a randomized participant with visits, a visit clock, a clean rate limit."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.core.cache import cache

from assessments import links
from scheduling.models import Visit


@pytest.fixture(autouse=True)
def _clean_cache():
    # The wrong-token counters live in the shared cache (Redis in these tests): start every test from zero.
    cache.clear()
    links.local_counter.clear()
    links._cache_down.clear()
    yield
    cache.clear()
    links.local_counter.clear()
    links._cache_down.clear()


@pytest.fixture
def participant(make_participant):
    from scheduling.services import schedule_generate

    p = make_participant("randomized", contact={"full_name": "Test Person", "email": "person@example.org"})
    if not Visit.objects.filter(participant=p).exists():
        schedule_generate(participant=p, by=None)
    return p


@pytest.fixture
def baseline(participant):
    return Visit.objects.get(participant=participant, code="BASELINE")


def local_noon(visit: Visit, day: dt.date, tz_name: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12, 0), tzinfo=zoneinfo.ZoneInfo(tz_name))


@pytest.fixture
def in_window(baseline, participant):
    """The clock moved to noon (participant's time) on the first day of the BASELINE window, ticking."""
    with time_machine.travel(local_noon(baseline, baseline.window_start, participant.time_zone), tick=True):
        yield
