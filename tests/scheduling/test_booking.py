"""Dosing sessions: a therapist dyad, a room, no double-booking (409), overnight stays, race safety."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import IntegrityError, transaction

from scheduling.models import Booking, Visit
from scheduling.services import room_create
from tests.factories import staff
from trialsite.roles import Role

RANDOMIZED = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 3, 20, 18, 0, tzinfo=dt.UTC)
# 30 March 2026, 09:00-17:00 in Portland (PDT, UTC-7).
DOSE_START = "2026-03-30T16:00:00Z"


@pytest.fixture
def team(pdx):
    return {name: staff(name, Role.THERAPIST, pdx) for name in ("carol", "dave", "erin", "frank")}


@pytest.fixture
def rooms(pdx):
    return {name: room_create(site=pdx, name=name, by=None) for name in ("Dosing 1", "Dosing 2")}


@pytest.fixture
def two(make_participant):
    with time_machine.travel(RANDOMIZED, tick=False):
        return make_participant(to="randomized"), make_participant(to="randomized")


def dose(participant, code="DOSE1") -> Visit:
    return Visit.objects.get(participant=participant, code=code)


def book(client, visit, **body):
    with time_machine.travel(NOW, tick=False):
        return client.post(f"/api/v1/visits/{visit.pk}/schedule/", body, format="json")


def test_dosing_session_books_dyad_room_and_overnight(two, team, rooms, alice, api):
    p1, _ = two
    r = book(api(alice), dose(p1), start=DOSE_START, room="Dosing 1", staff=["carol", "dave"])

    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["scheduled_start"] == "2026-03-30T16:00:00Z"
    assert body["scheduled_end"] == "2026-03-31T00:00:00Z"  # derived from the 480-minute duration
    assert body["room"] == "Dosing 1" and body["staff"] == ["carol", "dave"] and body["warnings"] == []
    assert body["dosing_number"] == 1 and "arm" not in body
    bookings = {b.resource: b for b in Booking.objects.filter(visit=dose(p1))}
    assert set(bookings) == {f"user:{team['carol'].pk}", f"user:{team['dave'].pk}", f"room:{rooms['Dosing 1'].pk}"}
    # The overnight stay keeps the room until 09:00 local the next morning.
    assert bookings[f"room:{rooms['Dosing 1'].pk}"].ends_at == dt.datetime(2026, 3, 31, 16, 0, tzinfo=dt.UTC)
    assert bookings[f"user:{team['carol'].pk}"].ends_at == dt.datetime(2026, 3, 31, 0, 0, tzinfo=dt.UTC)


def test_double_booked_therapist_is_409_naming_the_conflict(two, team, rooms, alice, api):
    p1, p2 = two
    assert book(api(alice), dose(p1), start=DOSE_START, room="Dosing 1", staff=["carol", "dave"]).status_code == 200

    r = book(api(alice), dose(p2), start="2026-03-30T20:00:00Z", room="Dosing 2", staff=["erin", "carol"])

    assert r.status_code == 409
    assert r.json()["detail"] == f"therapist carol is booked 2026-03-30 09:00-17:00 for {p1.participant_id} DOSE1"
    assert dose(p2).status == "planned" and not Booking.objects.filter(visit=dose(p2)).exists()


def test_double_booked_room_is_409_until_the_morning_after(two, team, rooms, alice, api):
    p1, p2 = two
    book(api(alice), dose(p1), start=DOSE_START, room="Dosing 1", staff=["carol", "dave"])

    # 08:00 local the next morning: the overnight participant still has the room.
    r = book(api(alice), dose(p2), start="2026-03-31T15:00:00Z", room="Dosing 1", staff=["erin", "frank"])
    assert r.status_code == 409
    assert r.json()["detail"] == (
        f"room Dosing 1 is booked 2026-03-30 09:00-2026-03-31 09:00 for {p1.participant_id} DOSE1"
    )
    assert dose(p2).status == "planned"

    # From 09:00 the room is free (bookings are half-open intervals).
    r = book(api(alice), dose(p2), start="2026-03-31T16:00:00Z", room="Dosing 1", staff=["erin", "frank"])
    assert r.status_code == 200, r.json()
    assert dose(p2).status == "scheduled"


@pytest.mark.parametrize(
    ("staff_names", "room", "field"),
    [
        (["carol"], "Dosing 1", "staff"),  # one therapist, the dyad needs two
        (["carol", "carol"], "Dosing 1", "staff"),  # not distinct
        (["carol", "alice"], "Dosing 1", "staff"),  # alice is a coordinator, not a therapist
        (["carol", "dave"], None, "room"),
        (["carol", "dave"], "Nowhere", "room"),
    ],
)
def test_dosing_needs_two_distinct_therapists_and_a_room(two, team, rooms, alice, api, staff_names, room, field):
    p1, _ = two
    body = {"start": DOSE_START, "staff": staff_names}
    if room:
        body["room"] = room
    r = book(api(alice), dose(p1), **body)
    assert r.status_code == 400 and field in r.json(), r.json()
    assert dose(p1).status == "planned" and not Booking.objects.exists()


def test_changing_the_dyad_warns(two, team, rooms, alice, api):
    p1, _ = two
    book(api(alice), dose(p1), start=DOSE_START, room="Dosing 1", staff=["carol", "dave"])
    r = book(api(alice), dose(p1, "DOSE2"), start="2026-04-27T16:00:00Z", room="Dosing 1", staff=["carol", "erin"])

    assert r.status_code == 200
    assert len(r.json()["warnings"]) == 1 and "DOSE1 (carol, dave)" in r.json()["warnings"][0]
    assert sorted(dose(p1, "DOSE2").staff.values_list("username", flat=True)) == ["carol", "erin"]


def test_rescheduling_replaces_own_bookings(two, team, rooms, alice, api):
    p1, _ = two
    book(api(alice), dose(p1), start=DOSE_START, room="Dosing 1", staff=["carol", "dave"])
    r = book(api(alice), dose(p1), start="2026-04-01T16:00:00Z", room="Dosing 1", staff=["carol", "dave"])

    assert r.status_code == 200, r.json()
    assert Booking.objects.filter(visit=dose(p1)).count() == 3
    assert set(Booking.objects.values_list("starts_at", flat=True)) == {dt.datetime(2026, 4, 1, 16, tzinfo=dt.UTC)}


def test_therapist_may_schedule_but_rater_may_not(two, team, rooms, personas, api):
    p1, _ = two
    r = book(api(personas["rater"]), dose(p1), start=DOSE_START, room="Dosing 1", staff=["carol", "dave"])
    assert r.status_code == 403 and dose(p1).status == "planned"
    r = book(api(team["carol"]), dose(p1), start=DOSE_START, room="Dosing 1", staff=["carol", "dave"])
    assert r.status_code == 200 and dose(p1).status == "scheduled"


def test_database_refuses_overlapping_bookings_even_without_the_service_check(two, team, rooms):
    # The race the service check cannot close: two transactions that both saw a free slot. The exclusion constraint
    # on PostgreSQL refuses the second insert.
    p1, p2 = two
    start = dt.datetime(2026, 3, 30, 16, tzinfo=dt.UTC)
    Booking.objects.create(
        visit=dose(p1),
        resource=f"user:{team['carol'].pk}",
        user=team["carol"],
        starts_at=start,
        ends_at=start + dt.timedelta(hours=8),
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Booking.objects.create(
            visit=dose(p2),
            resource=f"user:{team['carol'].pk}",
            user=team["carol"],
            starts_at=start + dt.timedelta(hours=7),
            ends_at=start + dt.timedelta(hours=9),
        )
    assert Booking.objects.count() == 1


def test_a_clash_at_another_site_does_not_name_its_participant(make_participant, nyc, pdx, alice, api):
    """A therapist who works at both sites is booked at NYC: the PDX coordinator's 409 says the therapist is taken,
    not whose session it is (that participant is not theirs to see)."""
    both = staff("carol", Role.THERAPIST, pdx, nyc)
    bob = staff("bob", Role.COORDINATOR, nyc)
    staff("dave", Role.THERAPIST, pdx, nyc)
    room_create(site=pdx, name="Dosing 1", by=None)
    room_create(site=nyc, name="Dosing NY", by=None)
    with time_machine.travel(RANDOMIZED, tick=False):
        there = make_participant(to="randomized", site=nyc, by=bob)
        here = make_participant(to="randomized")
    ok = book(api(bob), dose(there), start="2026-03-30T13:00:00Z", room="Dosing NY", staff=["carol", "dave"])
    assert ok.status_code == 200, ok.json()
    r = book(api(alice), dose(here), start=DOSE_START, room="Dosing 1", staff=[both.username, "dave"])
    assert r.status_code == 409
    assert r.json()["detail"] == "therapist carol is booked 2026-03-30 06:00-14:00 for a session at another site"
    assert there.participant_id not in r.content.decode() and dose(here).status == "planned"
