"""The dosing calendar (/calendar/): a site's week of rooms by day and its therapists, in the site's time zone at a
moved clock; booking a dosing session through the service as the API does (conflicts inline with the service's
message, an out-of-window session confirmed first); rooms created and retired by an administrator only; site
scoping, no arm in any byte, a query count that does not grow with the bookings, and a GET that writes nothing."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from participants import services as participant_services
from scheduling import services as scheduling_services
from scheduling.models import Booking, Room, Visit
from tests.dashboard.conftest import page_text
from tests.factories import staff
from tests.support import dbstate
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

PDX_TZ = zoneinfo.ZoneInfo("America/Los_Angeles")
NYC_TZ = zoneinfo.ZoneInfo("America/New_York")
RANDOMIZED = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)  # DOSE1: target 30 March, window 27 March to 6 April
NOW = dt.datetime(2026, 3, 20, 18, 0, tzinfo=dt.UTC)
# Sunday 29 March 22:30 in Portland, but already Monday 30 March 01:30 in New York: the two sites are in different
# weeks at this instant.
SPLIT = dt.datetime(2026, 3, 30, 5, 30, tzinfo=dt.UTC)
ARM_WORDS = ("mdma", "placebo")  # the MAP arms' codes (and, case aside, part of their labels)


@pytest.fixture
def team(pdx):
    return {name: staff(name, Role.THERAPIST, pdx) for name in ("carol", "dave", "erin", "frank")}


@pytest.fixture
def rooms(pdx):
    with transaction.atomic():
        return {
            name: scheduling_services.room_create(site=pdx, name=name, by=None) for name in ("Dosing 1", "Dosing 2")
        }


@pytest.fixture
def two(make_participant):
    with time_machine.travel(RANDOMIZED, tick=False):
        return make_participant(to="randomized"), make_participant(to="randomized")


def dose(participant, code="DOSE1") -> Visit:
    return Visit.objects.select_related("participant").get(participant=participant, code=code)


def schedule(participant, start: dt.datetime, room: Room, names: list[str], by, code="DOSE1") -> None:
    with time_machine.travel(NOW, tick=False), transaction.atomic():
        scheduling_services.visit_schedule(visit=dose(participant, code), start=start, room=room, staff=names, by=by)


def get(client, user, when=NOW, **params):
    with time_machine.travel(when, tick=False):
        client.force_login(user)
        return client.get("/calendar/", params)


def post(client, user, path: str, data: dict, *, site="PDX", week="2026-03-30", follow=False):
    with time_machine.travel(NOW, tick=False):
        client.force_login(user)
        return client.post(f"{path}?site={site}&week={week}", data, follow=follow)


def booking(visit: Visit, room: Room, names: list[str], start: str, **extra) -> dict:
    return {"visit": str(visit.pk), "room": str(room.pk), "therapists": names, "start": start, **extra}


def visit_audit(visit: Visit) -> list[tuple[str, str, str]]:
    return list(
        AuditEvent.objects.filter(entity_type="visit", entity_id=str(visit.pk), field="scheduled_start")
        .order_by("id")
        .values_list("actor_username", "new_value", "reason")
    )


def last_audit_id() -> int | None:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()


def written_since(last_id: int | None) -> list[tuple[str, str]]:
    """Audit rows of trial data since ``last_id`` (signing in is recorded too, and is not trial data)."""
    rows = AuditEvent.objects.filter(id__gt=last_id or 0).exclude(action="login")
    return list(rows.values_list("entity_type", "field"))


def cell(response, room_name: str, day: dt.date) -> list[str]:
    """'<participant> <visit> <span> <therapists>' of every session in a room's cell on a day."""
    monday = response.context["week"].monday
    for row in response.context["room_rows"]:
        if row.room is not None and row.room.name == room_name:
            return [
                f"{s.visit.participant.participant_id} {s.visit.code} {s.span} {','.join(s.therapists)}"
                for s in row.cells[(day - monday).days]
            ]
    raise AssertionError(f"no row for {room_name}")


# --- the week ------------------------------------------------------------------------------------------------------


def test_the_week_runs_monday_to_sunday_in_each_sites_zone(client, study, pdx, nyc, two, team, rooms, alice, bob,
                                                           make_participant):  # fmt: skip
    p1, _ = two
    nyc_team = [staff(name, Role.THERAPIST, nyc) for name in ("gina", "hugo")]
    with time_machine.travel(RANDOMIZED, tick=False):
        there = make_participant(to="randomized", site=nyc, by=bob)
    with transaction.atomic():
        nyc_room = scheduling_services.room_create(site=nyc, name="Suite A", by=None)
    # Portland: Sunday 29 March 21:00 local, which is already Monday in UTC.
    schedule(p1, dt.datetime(2026, 3, 29, 21, 0, tzinfo=PDX_TZ), rooms["Dosing 1"], ["carol", "dave"], alice)
    # New York: Monday 30 March 00:30 local, which is still Sunday in Portland.
    schedule(there, dt.datetime(2026, 3, 30, 0, 30, tzinfo=NYC_TZ), nyc_room, [u.username for u in nyc_team], bob)

    # At SPLIT, "this week" is the week of 23 March in Portland and of 30 March in New York.
    here = get(client, alice, when=SPLIT)
    body = page_text(here)
    assert here.context["week"].monday == dt.date(2026, 3, 23) and here.context["site"].code == "PDX"
    assert cell(here, "Dosing 1", dt.date(2026, 3, 29)) == [
        f"{p1.participant_id} DOSE1 21:00–2026-03-30 05:00 carol,dave"
    ]
    assert f'<a href="/participants/{p1.participant_id}/#visit-DOSE1">{p1.participant_id}</a> DOSE1' in body
    assert "21:00–2026-03-30 05:00" in body and "carol, dave" in body
    assert "week from Monday 2026-03-23 to Sunday 2026-03-29" in body and "(America/Los_Angeles)" in body
    assert '<time datetime="2026-03-29">Sun 29 Mar</time>' in body
    assert there.participant_id not in body  # another site's session
    # The therapists' list: each PDX therapist, with their sessions of the week.
    rows = {row.username: [s.visit.code for s in row.sessions] for row in here.context["therapist_rows"]}
    assert rows == {"carol": ["DOSE1"], "dave": ["DOSE1"], "erin": [], "frank": []}
    # Previous and next weeks.
    assert 'href="/calendar/?site=PDX&amp;week=2026-03-16" rel="prev"' in body
    assert 'href="/calendar/?site=PDX&amp;week=2026-03-30" rel="next"' in body
    assert cell(get(client, alice, when=SPLIT, site="PDX", week="2026-03-30"), "Dosing 1", dt.date(2026, 3, 30)) == []

    there_page = get(client, bob, when=SPLIT)
    assert there_page.context["week"].monday == dt.date(2026, 3, 30)
    assert cell(there_page, "Suite A", dt.date(2026, 3, 30)) == [f"{there.participant_id} DOSE1 00:30–08:30 gina,hugo"]
    assert "(America/New_York)" in page_text(there_page) and p1.participant_id not in page_text(there_page)
    # Any day of a week shows that week, Monday first.
    assert get(client, bob, when=SPLIT, site="NYC", week="2026-04-02").context["week"].monday == dt.date(2026, 3, 30)


def test_a_bad_week_is_explained_and_this_week_shown(client, rooms, alice):
    response = get(client, alice, site="PDX", week="soon")
    assert response.status_code == 400
    assert "“soon” is not a date; this week is shown." in response.content.decode()
    assert response.context["week"].monday == dt.date(2026, 3, 16)


# --- booking -------------------------------------------------------------------------------------------------------


def test_booking_a_dosing_session_from_the_page(client, two, team, rooms, alice):
    p1, _ = two
    page = page_text(get(client, alice, site="PDX"))
    assert f"{p1.participant_id} · DOSE1 · window 2026-03-27 to 2026-04-06" in page
    assert 'type="datetime-local"' in page and "(America/Los_Angeles)" in page
    # The reason's help is the text its aria-describedby names.
    assert 'aria-describedby="id_reason_helptext"' in page and 'id="id_reason_helptext"' in page

    response = post(
        client, alice, "/calendar/book/", booking(dose(p1), rooms["Dosing 1"], ["carol", "dave"], "2026-03-30T09:00")
    )

    assert response.status_code == 302 and response["Location"] == "/calendar/?site=PDX&week=2026-03-30"
    visit = dose(p1)
    assert visit.status == "scheduled" and visit.room == rooms["Dosing 1"]
    # 09:00 in Portland (PDT) is 16:00 UTC; the 480 minutes of the protocol end it at 17:00 local.
    assert visit.scheduled_start == dt.datetime(2026, 3, 30, 16, 0, tzinfo=dt.UTC)
    assert visit.scheduled_end == dt.datetime(2026, 3, 31, 0, 0, tzinfo=dt.UTC)
    assert sorted(visit.staff.values_list("username", flat=True)) == ["carol", "dave"]
    assert Booking.objects.filter(visit=visit).count() == 3
    assert visit_audit(visit) == [("alice", "2026-03-30T16:00:00+00:00", "")]

    shown = get(client, alice, site="PDX", week="2026-03-30")
    body = page_text(shown)
    assert f"Booked DOSE1 of {p1.participant_id} on 2026-03-30, 09:00–17:00, in Dosing 1 with carol, dave." in body
    assert cell(shown, "Dosing 1", dt.date(2026, 3, 30)) == [f"{p1.participant_id} DOSE1 09:00–17:00 carol,dave"]


def test_moving_a_booked_session_needs_a_reason(client, two, team, rooms, alice):
    p1, _ = two
    schedule(p1, dt.datetime(2026, 3, 30, 9, 0, tzinfo=PDX_TZ), rooms["Dosing 1"], ["carol", "dave"], alice)
    move = booking(dose(p1), rooms["Dosing 2"], ["carol", "dave"], "2026-04-01T10:00")

    refused = post(client, alice, "/calendar/book/", move)
    assert refused.status_code == 400
    assert "Give a reason for moving a booked session." in refused.content.decode()
    assert dose(p1).scheduled_start == dt.datetime(2026, 3, 30, 16, 0, tzinfo=dt.UTC)

    moved = post(client, alice, "/calendar/book/", {**move, "reason": "participant asked for Wednesday"})
    assert moved.status_code == 302 and moved["Location"] == "/calendar/?site=PDX&week=2026-03-30"
    assert dose(p1).scheduled_start == dt.datetime(2026, 4, 1, 17, 0, tzinfo=dt.UTC)
    assert dose(p1).room == rooms["Dosing 2"]
    assert visit_audit(dose(p1))[-1] == ("alice", "2026-04-01T17:00:00+00:00", "participant asked for Wednesday")


def test_a_room_conflict_is_shown_inline_and_nothing_is_booked(client, two, team, rooms, alice):
    p1, p2 = two
    schedule(p1, dt.datetime(2026, 3, 30, 9, 0, tzinfo=PDX_TZ), rooms["Dosing 1"], ["carol", "dave"], alice)
    before = last_audit_id()

    # 08:00 the next morning: the overnight stay still holds the room.
    response = post(
        client, alice, "/calendar/book/", booking(dose(p2), rooms["Dosing 1"], ["erin", "frank"], "2026-03-31T08:00")
    )

    assert response.status_code == 409
    body = response.content.decode()
    # The API's 409 detail, word for word.
    assert f"room Dosing 1 is booked 2026-03-30 09:00-2026-03-31 09:00 for {p1.participant_id} DOSE1" in body
    assert "Nothing was booked." in body
    # Nothing lost: the form comes back as it was sent.
    assert 'value="2026-03-31T08:00"' in body
    assert f'<option value="{dose(p2).pk}" selected>' in body
    assert f'<option value="{rooms["Dosing 1"].pk}" selected>' in body
    assert 'value="erin"' in body and 'value="frank"' in body and body.count("checked") == 2
    assert dose(p2).status == "planned" and not Booking.objects.filter(visit=dose(p2)).exists()
    assert written_since(before) == []


def test_a_therapist_conflict_is_shown_inline_and_nothing_is_booked(client, two, team, rooms, alice):
    p1, p2 = two
    schedule(p1, dt.datetime(2026, 3, 30, 9, 0, tzinfo=PDX_TZ), rooms["Dosing 1"], ["carol", "dave"], alice)
    before = last_audit_id()

    response = post(
        client, alice, "/calendar/book/", booking(dose(p2), rooms["Dosing 2"], ["erin", "carol"], "2026-03-30T13:00")
    )

    assert response.status_code == 409
    body = response.content.decode()
    assert f"therapist carol is booked 2026-03-30 09:00-17:00 for {p1.participant_id} DOSE1" in body
    assert 'value="2026-03-30T13:00"' in body
    assert dose(p2).status == "planned" and not Booking.objects.filter(visit=dose(p2)).exists()
    assert written_since(before) == []


def test_the_services_own_refusals_are_shown_as_400(client, two, team, rooms, alice):
    p1, _ = two
    response = post(
        client, alice, "/calendar/book/", booking(dose(p1), rooms["Dosing 1"], ["carol"], "2026-03-30T09:00")
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "the dosing session cannot be booked as given" in body
    assert "a dosing session needs 2 distinct therapists, got 1" in body
    assert dose(p1).status == "planned"


def test_a_session_outside_the_window_is_confirmed_first(client, two, team, rooms, alice, api):
    p1, p2 = two
    late = booking(dose(p1), rooms["Dosing 1"], ["carol", "dave"], "2026-04-08T09:00")

    warned = post(client, alice, "/calendar/book/", late)
    assert warned.status_code == 400
    body = warned.content.decode()
    assert (
        "The session would start on 2026-04-08, outside the window of DOSE1 (2026-03-27 to 2026-04-06, site dates)."
        in body
    )
    assert 'name="outside_window"' in body and "Book outside the window" in body
    assert 'value="2026-04-08T09:00"' in body
    assert dose(p1).status == "planned" and visit_audit(dose(p1)) == []

    booked = post(client, alice, "/calendar/book/", {**late, "outside_window": "on"})
    assert booked.status_code == 302 and booked["Location"] == "/calendar/?site=PDX&week=2026-04-06"
    assert dose(p1).scheduled_start == dt.datetime(2026, 4, 8, 16, 0, tzinfo=dt.UTC)
    assert visit_audit(dose(p1)) == [("alice", "2026-04-08T16:00:00+00:00", "")]
    # The API books such a session as asked (completing it records the deviation); the page only asks first.
    with time_machine.travel(NOW, tick=False):
        r = api(alice).post(
            f"/api/v1/visits/{dose(p2).pk}/schedule/",
            {"start": "2026-04-09T16:00:00Z", "room": "Dosing 2", "staff": ["erin", "frank"]},
            format="json",
        )
    assert r.status_code == 200, r.json()


def test_a_time_the_clock_skips_is_refused(client, two, team, rooms, alice):
    p1, _ = two
    # 8 March 2026, 02:30 does not exist in Portland (the clocks go from 02:00 to 03:00).
    response = post(
        client, alice, "/calendar/book/", booking(dose(p1), rooms["Dosing 1"], ["carol", "dave"], "2026-03-08T02:30")
    )
    assert response.status_code == 400
    assert "This time does not exist in America/Los_Angeles" in response.content.decode()
    assert dose(p1).status == "planned"


def test_roles_that_cannot_schedule_have_no_form_and_are_refused(client, two, team, rooms, personas):
    p1, _ = two
    rater = personas[Role.RATER]
    assert "Book a dosing session" not in page_text(get(client, rater, site="PDX"))
    response = post(
        client, rater, "/calendar/book/", booking(dose(p1), rooms["Dosing 1"], ["carol", "dave"], "2026-03-30T09:00")
    )
    assert response.status_code == 403
    assert "your role at this site cannot schedule visits" in response.content.decode()
    assert dose(p1).status == "planned" and not Booking.objects.exists()
    # A therapist books dosing sessions as a dyad.
    assert "Book a dosing session" in page_text(get(client, team["carol"], site="PDX"))


# --- rooms ---------------------------------------------------------------------------------------------------------


def room_audit(room_id) -> list[tuple[str, str, str, str]]:
    return list(
        AuditEvent.objects.filter(entity_type="room", entity_id=str(room_id))
        .order_by("id")
        .values_list("actor_username", "action", "field", "reason")
    )


def test_an_administrator_creates_and_retires_rooms(client, rooms, personas):
    admin = personas[Role.ADMIN]
    assert "New room" in page_text(get(client, admin, site="PDX"))

    created = post(client, admin, "/calendar/rooms/", {"name": "Dosing 3", "overnight_capable": "on"})
    assert created.status_code == 302 and created["Location"] == "/calendar/?site=PDX&week=2026-03-30#rooms"
    room = Room.objects.get(site__code="PDX", name="Dosing 3")
    assert room.overnight_capable and room.retired_at is None
    assert room_audit(room.pk) == [
        ("admin-pdx", "create", "name", ""),
        ("admin-pdx", "create", "overnight_capable", ""),
    ]
    assert "Room Dosing 3 created." in page_text(get(client, admin, site="PDX"))

    # A name the site already has: the service's message, the form kept.
    again = post(client, admin, "/calendar/rooms/", {"name": "Dosing 3"})
    assert again.status_code == 400 and "room &#x27;Dosing 3&#x27; exists at PDX" in again.content.decode()

    # Retiring asks a reason and a confirmation before the service is called.
    path = f"/calendar/rooms/{room.pk}/retire/"
    unconfirmed = post(client, admin, path, {f"retire-{room.pk}-reason": "flooded"})
    assert unconfirmed.status_code == 400
    assert "Confirm that the room is to be retired." in unconfirmed.content.decode()
    assert "flooded</textarea>" in unconfirmed.content.decode()
    room.refresh_from_db()
    assert room.retired_at is None and len(room_audit(room.pk)) == 2

    retired = post(client, admin, path, {f"retire-{room.pk}-reason": "flooded", f"retire-{room.pk}-confirm": "on"})
    assert retired.status_code == 302
    room.refresh_from_db()
    assert room.retired_at is not None and not room.active and room.retired_by == admin
    assert room_audit(room.pk)[2:] == [
        ("admin-pdx", "update", "retired_at", "flooded"),
        ("admin-pdx", "update", "active", "flooded"),
    ]
    page = get(client, admin, site="PDX")
    assert "Room Dosing 3 retired." in page_text(page)
    # A retired room with no session that week has no row in the week, and is no choice for a booking.
    assert "Dosing 3" not in [row.room.name for row in page.context["room_rows"]]
    assert "Dosing 3" not in [label for _, label in page.context["booking_form"].fields["room"].choices]


def test_a_coordinator_sees_no_room_forms_and_is_refused(client, rooms, alice):
    page = page_text(get(client, alice, site="PDX"))
    assert "New room" not in page and "Retire Dosing 1" not in page and "Dosing 1" in page

    created = post(client, alice, "/calendar/rooms/", {"name": "Closet"})
    assert created.status_code == 403
    assert "only an administrator may create rooms" in created.content.decode()
    assert not Room.objects.filter(name="Closet").exists()

    room = rooms["Dosing 1"]
    data = {f"retire-{room.pk}-reason": "not needed", f"retire-{room.pk}-confirm": "on"}
    retired = post(client, alice, f"/calendar/rooms/{room.pk}/retire/", data)
    assert retired.status_code == 403
    assert "only an administrator may retire rooms" in retired.content.decode()
    room.refresh_from_db()
    assert room.retired_at is None
    assert AuditEvent.objects.filter(entity_type="room", actor_username="alice").count() == 0


# --- scoping, blinding, queries, purity ----------------------------------------------------------------------------


def test_another_site_is_not_found(client, nyc, two, team, rooms, alice, bob):
    p1, _ = two
    with transaction.atomic():
        nyc_room = scheduling_services.room_create(site=nyc, name="Suite A", by=None)
    assert get(client, alice, site="NYC").status_code == 404
    assert get(client, alice, site="NOPE").status_code == 404
    book = booking(dose(p1), rooms["Dosing 1"], ["carol", "dave"], "2026-03-30T09:00")
    assert post(client, alice, "/calendar/book/", book, site="NYC").status_code == 404
    data = {f"retire-{nyc_room.pk}-reason": "x", f"retire-{nyc_room.pk}-confirm": "on"}
    assert post(client, alice, f"/calendar/rooms/{nyc_room.pk}/retire/", data).status_code == 404
    assert post(client, alice, f"/calendar/rooms/{nyc_room.pk}/retire/", data, site="NYC").status_code == 404
    # bob at NYC cannot book a PDX visit from his own site's form: it is not one of its choices.
    refused = post(client, bob, "/calendar/book/", book, site="NYC")
    assert refused.status_code == 400 and "Select a valid choice" in refused.content.decode()
    assert dose(p1).status == "planned"
    nyc_room.refresh_from_db()
    assert nyc_room.retired_at is None


@pytest.mark.parametrize("role", [Role.ADMIN, Role.RATER, Role.THERAPIST])
def test_no_arm_in_any_byte(client, two, team, rooms, alice, personas, role):
    p1, p2 = two
    schedule(p1, dt.datetime(2026, 3, 30, 9, 0, tzinfo=PDX_TZ), rooms["Dosing 1"], ["carol", "dave"], alice)
    body = page_text(get(client, personas[role], site="PDX", week="2026-03-30")).lower()
    assert p1.participant_id.lower() in body
    for word in ARM_WORDS:
        assert word not in body, word


def count_queries(client, user) -> int:
    with time_machine.travel(NOW, tick=False):
        client.force_login(user)
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/calendar/", {"site": "PDX", "week": "2026-03-30"})
    assert response.status_code == 200
    return len(captured)


def test_the_query_count_does_not_grow_with_the_bookings(client, make_participant, team, rooms, alice):
    def book_days(participants, first_day):
        for offset, participant in enumerate(participants):
            day = dt.date(2026, 3, 30) + dt.timedelta(days=first_day + offset)
            start = dt.datetime.combine(day, dt.time(9, 0), PDX_TZ)
            schedule(participant, start, rooms["Dosing 1"], ["carol", "dave"], alice)

    with time_machine.travel(RANDOMIZED, tick=False):
        few = [make_participant(to="randomized") for _ in range(3)]
    book_days(few[:2], 0)
    small = count_queries(client, alice)
    with time_machine.travel(RANDOMIZED, tick=False):
        many = [make_participant(to="randomized") for _ in range(8)]
    book_days(many[:5], 2)
    large = count_queries(client, alice)
    response = get(client, alice, site="PDX", week="2026-03-30")
    assert response.context["session_count"] == 7
    assert len(response.context["booking_form"].fields["visit"].choices) > 20  # every planned or booked dosing visit
    assert small == large, (small, large)


def test_a_get_of_the_calendar_writes_nothing(client, two, team, rooms, alice, personas, settings):
    p1, _ = two
    schedule(p1, dt.datetime(2026, 3, 30, 9, 0, tzinfo=PDX_TZ), rooms["Dosing 1"], ["carol", "dave"], alice)
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"  # the session row is HTTP state
    names = dbstate.tables()
    with time_machine.travel(NOW, tick=False):
        clients = [Client(), Client()]
        for each, user in zip(clients, (alice, personas[Role.ADMIN]), strict=True):
            each.force_login(user)  # signing in is recorded; it happens before the snapshot
        before = dbstate.snapshot(names)
        for each in clients:
            for params in ({}, {"site": "PDX", "week": "2026-03-30"}, {"site": "PDX", "week": "nope"}):
                assert each.get("/calendar/", params).status_code in (200, 400)
        assert dbstate.differences(before, dbstate.snapshot(names)) == {}


def test_the_page_is_in_spanish_for_a_spanish_speaker(client, two, team, rooms, alice):
    with transaction.atomic():
        participant_services.staff_language_set(user=alice, language="es", by=alice)
    body = page_text(get(client, alice, site="PDX"))
    assert "Calendario de sesiones" in body and "Reservar una sesión de dosificación" in body
    assert "Semana anterior" in body and ">Calendario</a>" in body


def test_the_form_offers_the_visits_whose_window_meets_the_next_four_weeks(client, two, team, rooms, alice):
    p1, _ = two
    doses = {code: dose(p1, code) for code in ("DOSE1", "DOSE2", "DOSE3")}

    def offered(week: str) -> set[str]:
        form = get(client, alice, site="PDX", week=week).context["booking_form"]
        ids = {value for value, _ in form.fields["visit"].choices if value}
        return {code for code, visit in doses.items() if str(visit.pk) in ids}

    # Each dose is offered from the week four weeks before its window opens to the week its window closes.
    for code, visit in doses.items():
        assert visit.window_start is not None and visit.window_end is not None
        opens_monday = visit.window_start - dt.timedelta(days=visit.window_start.weekday())
        earliest = opens_monday - dt.timedelta(weeks=3)
        assert code in offered(earliest.isoformat())
        assert code not in offered((earliest - dt.timedelta(weeks=1)).isoformat())
        assert code in offered(visit.window_end.isoformat())
        assert code not in offered((visit.window_end + dt.timedelta(weeks=1)).isoformat())
    # A booked dose is offered in the week it is booked in (to move it), wherever its window lies.
    schedule(p1, dt.datetime(2026, 3, 30, 9, 0, tzinfo=PDX_TZ), rooms["Dosing 1"], ["carol", "dave"], alice)
    late_week = (doses["DOSE1"].window_end + dt.timedelta(weeks=1)).isoformat()
    assert "DOSE1" not in offered(late_week)
    assert "DOSE1" in offered("2026-03-30")
