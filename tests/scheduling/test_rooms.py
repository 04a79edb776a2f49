"""Rooms are configuration: an administrator creates, changes and retires them through the services (and the
admin-only API), each change audited. A retired room keeps its bookings and takes no new ones."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import transaction

from audit.models import AuditEvent
from scheduling.models import Booking, Room, Visit
from scheduling.services import room_create, room_retire, room_update
from tests.factories import staff
from trialsite.errors import PermissionDeniedError
from trialsite.roles import Role

RANDOMIZED = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 3, 20, 18, 0, tzinfo=dt.UTC)


@pytest.fixture
def admin(personas):
    return personas[Role.ADMIN]


def room_events(room: Room) -> list[tuple[str, str, object, object, str]]:
    return [
        (e.action, e.field, e.old_value, e.new_value, e.reason)
        for e in AuditEvent.objects.filter(entity_type="room", entity_id=str(room.pk)).order_by("id")
    ]


# --- create ----------------------------------------------------------------------------------------------------------


def test_admin_creates_a_room_and_the_audit_says_who(admin, pdx, api):
    r = api(admin).post("/api/v1/rooms/", {"site": "PDX", "name": "Dosing 3", "overnight_capable": True}, format="json")

    assert r.status_code == 201, r.json()
    room = Room.objects.get(site=pdx, name="Dosing 3")
    assert r.json() == {
        "id": room.pk,
        "site": "PDX",
        "name": "Dosing 3",
        "overnight_capable": True,
        "active": True,
        "retired": False,
        "retired_at": None,
    }
    assert room_events(room) == [
        ("create", "name", None, "Dosing 3", ""),
        ("create", "overnight_capable", None, True, ""),
    ]
    event = AuditEvent.objects.filter(entity_type="room", entity_id=str(room.pk)).first()
    assert (event.actor_id, event.site_code) == (admin.pk, "PDX")


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.INVESTIGATOR, Role.THERAPIST])
def test_only_an_administrator_creates_rooms(personas, api, role):
    r = api(personas[role]).post("/api/v1/rooms/", {"site": "PDX", "name": "Dosing 3"}, format="json")

    assert r.status_code == 403
    assert r.json()["detail"] == "only an administrator may create rooms"
    assert not Room.objects.filter(name="Dosing 3").exists()
    assert not AuditEvent.objects.filter(entity_type="room").exists()


def test_an_admin_of_one_site_cannot_create_rooms_at_another(admin, nyc, api):
    # NYC is not among the admin's sites, so it reads as unknown.
    r = api(admin).post("/api/v1/rooms/", {"site": "NYC", "name": "Dosing 3"}, format="json")
    assert r.status_code == 400 and r.json()["site"] == ["no site 'NYC'"]
    staff("ann", Role.COORDINATOR, nyc)  # a role at NYC that is not admin does not help either
    with pytest.raises(PermissionDeniedError), transaction.atomic():
        room_create(site=nyc, name="Dosing 3", by=admin)
    assert not Room.objects.filter(site=nyc).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Dosing 3"}, "site"),
        ({"site": "PDX"}, "name"),
        ({"site": "PDX", "name": ""}, "name"),
        ({"site": "PDX", "name": "x" * 101}, "name"),
        ({"site": "PDX", "name": "Dosing 3", "overnight_capable": "perhaps"}, "overnight_capable"),
    ],
)
def test_bad_room_input_names_the_field(admin, api, body, field):
    r = api(admin).post("/api/v1/rooms/", body, format="json")
    assert r.status_code == 400 and r.json()[field]
    assert not AuditEvent.objects.filter(entity_type="room").exists()


def test_a_room_name_is_unique_per_site(admin, pdx, nyc, api):
    room_create(site=pdx, name="Dosing 1", by=None)
    r = api(admin).post("/api/v1/rooms/", {"site": "PDX", "name": "Dosing 1"}, format="json")
    assert r.status_code == 400 and r.json()["name"] == ["already exists"]
    assert room_create(site=nyc, name="Dosing 1", by=None).site == nyc  # another site may use the name


# --- update ----------------------------------------------------------------------------------------------------------


def test_admin_renames_a_room_with_an_audited_reason(admin, pdx, api):
    room = room_create(site=pdx, name="Dosing 1", by=None)

    r = api(admin).patch(
        f"/api/v1/rooms/{room.pk}/", {"name": "Dosing A", "active": False, "reason": "new signs"}, format="json"
    )

    assert r.status_code == 200, r.json()
    assert (r.json()["name"], r.json()["active"], r.json()["retired"]) == ("Dosing A", False, False)
    room.refresh_from_db()
    assert (room.name, room.active) == ("Dosing A", False)
    assert room_events(room)[-2:] == [
        ("update", "name", "Dosing 1", "Dosing A", "new signs"),
        ("update", "active", True, False, "new signs"),
    ]


def test_an_update_that_changes_nothing_writes_nothing(admin, pdx):
    room = room_create(site=pdx, name="Dosing 1", by=None)
    before = room_events(room)
    with transaction.atomic():
        room_update(room=room, name="Dosing 1", active=True, by=admin)
    assert room_events(room) == before


def test_only_an_administrator_changes_rooms(alice, pdx, api):
    room = room_create(site=pdx, name="Dosing 1", by=None)
    r = api(alice).patch(f"/api/v1/rooms/{room.pk}/", {"name": "Mine"}, format="json")
    assert r.status_code == 403
    assert Room.objects.get(pk=room.pk).name == "Dosing 1"


def test_update_needs_something_to_change_and_a_free_name(admin, pdx, api):
    room = room_create(site=pdx, name="Dosing 1", by=None)
    room_create(site=pdx, name="Dosing 2", by=None)
    r = api(admin).patch(f"/api/v1/rooms/{room.pk}/", {"reason": "nothing"}, format="json")
    assert r.status_code == 400 and r.json()["non_field_errors"]
    r = api(admin).patch(f"/api/v1/rooms/{room.pk}/", {"name": "Dosing 2"}, format="json")
    assert r.status_code == 400 and r.json()["name"] == ["already exists"]
    assert Room.objects.get(pk=room.pk).name == "Dosing 1"


def test_rooms_outside_the_users_sites_are_not_found(admin, nyc, api):
    room = room_create(site=nyc, name="Dosing 1", by=None)
    assert api(admin).patch(f"/api/v1/rooms/{room.pk}/", {"name": "x"}, format="json").status_code == 404
    assert api(admin).post(f"/api/v1/rooms/{room.pk}/retire/", {"reason": "x"}, format="json").status_code == 404
    assert api(admin).get(f"/api/v1/rooms/{room.pk}/").status_code == 404


# --- retire ----------------------------------------------------------------------------------------------------------


def test_admin_retires_a_room_with_a_reason(admin, pdx, api):
    room = room_create(site=pdx, name="Dosing 1", by=None)

    assert api(admin).post(f"/api/v1/rooms/{room.pk}/retire/", {}, format="json").json()["reason"]
    with time_machine.travel(NOW, tick=False):
        r = api(admin).post(f"/api/v1/rooms/{room.pk}/retire/", {"reason": "renovation"}, format="json")

    assert r.status_code == 200, r.json()
    assert r.json()["retired"] is True and r.json()["retired_at"] == "2026-03-20T18:00:00Z"
    assert r.json()["active"] is False
    room.refresh_from_db()
    assert (room.retired_at, room.retired_by) == (NOW, admin)
    assert room_events(room)[-2:] == [
        ("update", "retired_at", None, "2026-03-20T18:00:00+00:00", "renovation"),
        ("update", "active", True, False, "renovation"),
    ]
    listed = api(admin).get("/api/v1/rooms/").json()["results"]
    assert [(x["name"], x["retired"], x["active"]) for x in listed] == [("Dosing 1", True, False)]

    again = api(admin).post(f"/api/v1/rooms/{room.pk}/retire/", {"reason": "twice"}, format="json")
    assert again.status_code == 400 and again.json()["room"] == ["already retired"]
    changed = api(admin).patch(f"/api/v1/rooms/{room.pk}/", {"active": True}, format="json")
    assert changed.status_code == 400 and changed.json()["room"] == ["retired room"]


def test_only_an_administrator_retires_rooms(alice, pdx, api):
    room = room_create(site=pdx, name="Dosing 1", by=None)
    r = api(alice).post(f"/api/v1/rooms/{room.pk}/retire/", {"reason": "mine"}, format="json")
    assert r.status_code == 403
    assert Room.objects.get(pk=room.pk).retired_at is None


def test_a_retired_room_keeps_its_bookings_and_takes_no_new_one(make_participant, admin, alice, pdx, api):
    for name in ("carol", "dave", "erin", "frank"):
        staff(name, Role.THERAPIST, pdx)
    room = room_create(site=pdx, name="Dosing 1", by=admin)
    with time_machine.travel(RANDOMIZED, tick=False):
        p1, p2 = make_participant(to="randomized"), make_participant(to="randomized")
    dose1, dose2 = (Visit.objects.get(participant=p, code="DOSE1") for p in (p1, p2))
    with time_machine.travel(NOW, tick=False):
        booked = api(alice).post(
            f"/api/v1/visits/{dose1.pk}/schedule/",
            {"start": "2026-03-30T16:00:00Z", "room": "Dosing 1", "staff": ["carol", "dave"]},
            format="json",
        )
        assert booked.status_code == 200, booked.json()
        with transaction.atomic():
            room_retire(room=room, reason="renovation", by=admin)

        r = api(alice).post(
            f"/api/v1/visits/{dose2.pk}/schedule/",
            {"start": "2026-04-06T16:00:00Z", "room": "Dosing 1", "staff": ["erin", "frank"]},
            format="json",
        )

    assert r.status_code == 400
    assert r.json()["detail"] == "room Dosing 1 is retired and cannot be booked"
    assert r.json()["room"] == ["room Dosing 1 was retired on 2026-03-20"]
    assert Visit.objects.get(pk=dose2.pk).status == "planned"
    assert not Booking.objects.filter(visit=dose2).exists()
    # The session booked before the room was retired keeps its room.
    assert Visit.objects.get(pk=dose1.pk).room_id == room.pk
    assert Booking.objects.filter(visit=dose1, room=room).exists()
