"""Input and role limits on visits (issue 13, findings 10 and 11): clinical dates are plausible, API times carry an
offset, and a therapist books only the therapy sessions they work on. Each refusal leaves every table unchanged."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import transaction

from participants import services as participant_services
from scheduling.models import Visit
from tests.conftest import changed_tables, table_state
from tests.factories import UserFactory, staff
from trialsite.roles import Role

RANDOMIZED = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 4, 10, 18, 0, tzinfo=dt.UTC)
OFFSET = "give a time zone offset, e.g. 2026-03-01T09:00:00-08:00"


@pytest.fixture
def participant(make_participant):
    with time_machine.travel(RANDOMIZED, tick=False):
        return make_participant(to="randomized")


def visit(participant, code) -> Visit:
    return Visit.objects.get(participant=participant, code=code)


def post(client, url, data):
    with time_machine.travel(LATER, tick=False):
        return client.post(url, data, format="json")


def test_a_visit_completed_in_the_year_1196_is_refused_and_drags_nothing(participant, alice, api):
    dose1 = visit(participant, "DOSE1")
    before = table_state()
    r = post(api(alice), f"/api/v1/visits/{dose1.pk}/complete/", {"occurred_at": "1196-04-08T16:00:00Z"})
    assert r.status_code == 400
    assert r.json()["occurred_at"] == ["cannot be before the study's start (2000-01-01)"]
    assert r.json()["detail"] == "occurred_at lies before the study's start"
    # The visit, its dependents (re-planned from a completion), deviations and the audit trail: all unchanged.
    assert changed_tables(before, table_state()) == []
    assert visit(participant, "DOSE1").status == "planned" and visit(participant, "DOSE1").occurred_at is None


def test_dates_before_the_studys_own_start_are_refused_by_the_sites_calendar(participant, alice, api, study):
    root = UserFactory(username="root", is_superuser=True)
    with transaction.atomic():
        participant_services.study_update(
            study=study, start_date=dt.date(2026, 3, 2), reason="the protocol's first day", by=root
        )
    baseline = visit(participant, "BASELINE")
    before = table_state()
    # 20:00 on 1 March in Portland is 04:00 UTC on 2 March: the site's calendar says 1 March, before the start.
    r = post(api(alice), f"/api/v1/visits/{baseline.pk}/complete/", {"occurred_at": "2026-03-01T20:00:00-08:00"})
    assert r.status_code == 400 and r.json()["occurred_at"] == ["cannot be before the study's start (2026-03-02)"]
    r = post(api(alice), f"/api/v1/visits/{baseline.pk}/complete/", {"occurred_at": "2026-04-11T09:00:00-07:00"})
    assert r.status_code == 400 and r.json()["occurred_at"] == ["cannot be in the future"]
    assert changed_tables(before, table_state()) == []
    r = post(api(alice), f"/api/v1/visits/{baseline.pk}/complete/", {"occurred_at": "2026-03-02T09:00:00-08:00"})
    assert r.status_code == 200, r.json()
    assert visit(participant, "BASELINE").occurred_at == dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)


def test_a_withdrawal_dated_in_the_future_is_refused(participant, alice, api):
    before = table_state()
    r = post(
        api(alice),
        f"/api/v1/participants/{participant.participant_id}/withdraw/",
        {"level": "stop_follow_up", "reason": "moved away", "date": "2026-04-12"},
    )
    assert r.status_code == 400 and r.json()["date"] == ["cannot be in the future"]
    assert changed_tables(before, table_state()) == []


def test_a_time_without_an_offset_is_refused_naming_the_field(participant, alice, api):
    """09:00 at a Portland site was taken as 09:00 UTC (01:00 local): now the API asks for the offset."""
    prep1 = visit(participant, "PREP1")
    before = table_state()
    r = post(api(alice), f"/api/v1/visits/{prep1.pk}/schedule/", {"start": "2026-04-14T09:00:00"})
    assert r.status_code == 400 and r.json() == {"start": [OFFSET]}
    r = post(api(alice), f"/api/v1/visits/{prep1.pk}/complete/", {"occurred_at": "2026-04-08T09:00"})
    assert r.status_code == 400 and r.json() == {"occurred_at": [OFFSET]}
    assert changed_tables(before, table_state()) == []
    r = post(api(alice), f"/api/v1/visits/{prep1.pk}/schedule/", {"start": "2026-04-14T09:00:00-07:00"})
    assert r.status_code == 200, r.json()
    assert visit(participant, "PREP1").scheduled_start == dt.datetime(2026, 4, 14, 16, 0, tzinfo=dt.UTC)


def test_a_therapist_books_only_the_therapy_sessions_they_work_on(participant, pdx, api):
    theo = staff("theo", Role.THERAPIST, pdx)
    staff("tess", Role.THERAPIST, pdx)
    baseline, prep1 = visit(participant, "BASELINE"), visit(participant, "PREP1")
    before = table_state()
    r = post(api(theo), f"/api/v1/visits/{baseline.pk}/schedule/", {"start": "2026-04-14T09:00:00-07:00"})
    assert r.status_code == 403
    assert r.json()["detail"] == (
        "a therapist books only therapy sessions (preparation, dosing, integration), not this visit"
    )
    r = post(
        api(theo), f"/api/v1/visits/{prep1.pk}/schedule/", {"start": "2026-04-14T09:00:00-07:00", "staff": ["tess"]}
    )
    assert r.status_code == 403
    assert r.json()["detail"] == "a therapist books only the sessions they work on: name yourself among the staff"
    assert changed_tables(before, table_state()) == []
    r = post(
        api(theo),
        f"/api/v1/visits/{prep1.pk}/schedule/",
        {"start": "2026-04-14T09:00:00-07:00", "staff": ["theo", "tess"]},
    )
    assert r.status_code == 200, r.json()
    assert r.json()["status"] == "scheduled" and sorted(r.json()["staff"]) == ["tess", "theo"]
    assert visit(participant, "BASELINE").status == "planned" and visit(participant, "PREP1").status == "scheduled"
