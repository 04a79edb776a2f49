"""iCalendar feeds: valid RFC 5545, exactly the scheduled sessions of a site or person, token auth, no PHI."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from icalendar import Calendar
from rest_framework.test import APIClient

from accounts.services import token_issue
from scheduling.models import Visit
from scheduling.services import room_create
from tests.factories import staff
from trialsite.roles import Role

RANDOMIZED = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 3, 20, 18, 0, tzinfo=dt.UTC)


def token_client(user) -> APIClient:
    client = APIClient()
    _token, secret = token_issue(user=user, days=30, by=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def events(response) -> dict[str, dict]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/calendar")
    cal = Calendar.from_ical(response.content)
    return {
        str(e["UID"]): {
            "summary": str(e["SUMMARY"]),
            "start": e.decoded("DTSTART"),
            "end": e.decoded("DTEND"),
            "raw": e.to_ical().decode(),
        }
        for e in cal.walk("VEVENT")
    }


@pytest.fixture
def setup(make_participant, pdx, alice, api):
    carol, dave = staff("carol", Role.THERAPIST, pdx), staff("dave", Role.THERAPIST, pdx)
    room_create(site=pdx, name="Dosing 1", by=None)
    with time_machine.travel(RANDOMIZED, tick=False):
        p1, p2 = make_participant(to="randomized"), make_participant(to="randomized")
    client = api(alice)
    with time_machine.travel(NOW, tick=False):
        dose = Visit.objects.get(participant=p1, code="DOSE1")
        client.post(
            f"/api/v1/visits/{dose.pk}/schedule/",
            {"start": "2026-03-30T16:00:00Z", "room": "Dosing 1", "staff": ["carol", "dave"]},
            format="json",
        )
        prep = Visit.objects.get(participant=p2, code="PREP3")
        client.post(
            f"/api/v1/visits/{prep.pk}/schedule/", {"start": "2026-03-23T17:00:00Z", "staff": ["dave"]}, format="json"
        )
        cancelled = Visit.objects.get(participant=p2, code="PREP2")
        client.post(
            f"/api/v1/visits/{cancelled.pk}/schedule/",
            {"start": "2026-03-16T17:00:00Z", "staff": ["carol"]},
            format="json",
        )
        client.post(f"/api/v1/visits/{cancelled.pk}/cancel/", {"reason": "ill"}, format="json")
    return {"carol": carol, "dave": dave, "dose": dose, "prep": prep, "cancelled": cancelled, "p1": p1}


def test_site_feed_holds_exactly_the_scheduled_sessions(setup, alice):
    feed = events(token_client(alice).get("/api/v1/calendar/sites/PDX.ics"))

    dose, prep = setup["dose"], setup["prep"]
    assert set(feed) == {f"visit-{dose.pk}@trialsite", f"visit-{prep.pk}@trialsite"}
    event = feed[f"visit-{dose.pk}@trialsite"]
    assert event["summary"] == f"{setup['p1'].participant_id} DOSE1 Medicine session 1"
    assert event["start"] == dt.datetime(2026, 3, 30, 16, tzinfo=dt.UTC)
    assert event["end"] == dt.datetime(2026, 3, 31, 0, tzinfo=dt.UTC)
    assert "DTSTART:20260330T160000Z" in event["raw"]
    # Pseudonymous ids only: the contact details the fixture stored never appear.
    assert "Test Person" not in event["raw"] and "person@example.org" not in event["raw"]


def test_uid_is_stable_across_rescheduling(setup, alice, api):
    dose = setup["dose"]
    with time_machine.travel(NOW, tick=False):
        r = api(alice).post(
            f"/api/v1/visits/{dose.pk}/schedule/",
            {"start": "2026-04-01T16:00:00Z", "room": "Dosing 1", "staff": ["carol", "dave"]},
            format="json",
        )
    assert r.status_code == 200
    feed = events(token_client(alice).get("/api/v1/calendar/sites/PDX.ics"))
    assert feed[f"visit-{dose.pk}@trialsite"]["start"] == dt.datetime(2026, 4, 1, 16, tzinfo=dt.UTC)


def test_personal_feed_holds_only_own_sessions(setup):
    carol_feed = events(token_client(setup["carol"]).get("/api/v1/calendar/me.ics"))
    dave_feed = events(token_client(setup["dave"]).get("/api/v1/calendar/me.ics"))

    assert set(carol_feed) == {f"visit-{setup['dose'].pk}@trialsite"}  # her cancelled PREP2 is gone
    assert set(dave_feed) == {f"visit-{setup['dose'].pk}@trialsite", f"visit-{setup['prep'].pk}@trialsite"}


def test_calendar_client_accept_header_is_served(setup, alice):
    response = token_client(alice).get("/api/v1/calendar/me.ics", HTTP_ACCEPT="text/calendar")
    assert response.status_code == 200
    assert Calendar.from_ical(response.content).walk("VEVENT") == []


def test_other_site_calendar_is_404_and_anonymous_is_401(setup, bob):
    r = token_client(bob).get("/api/v1/calendar/sites/PDX.ics")
    assert r.status_code == 404 and b"VEVENT" not in r.content
    assert APIClient().get("/api/v1/calendar/sites/PDX.ics").status_code == 401
    assert events(token_client(bob).get("/api/v1/calendar/sites/NYC.ics")) == {}


def feed_url_of(response) -> str:
    assert response.status_code == 200, response.status_code
    body = response.content.decode()
    return body.split('id="feed-url" class="link-text" type="text" value="', 1)[1].split('"', 1)[0]


def test_a_personal_feed_url_serves_the_owners_calendar_without_a_session_until_revoked(setup):
    from django.test import Client

    from accounts.models import CalendarFeed
    from audit.models import AuditEvent

    carol = setup["carol"]
    staff_client = Client()
    staff_client.force_login(carol)
    url = feed_url_of(staff_client.post("/account/calendar-feed/"))
    assert url.startswith("http://") and "/calendar/feed/" in url and url.endswith(".ics")
    path = url.split("://", 1)[1].split("/", 1)[1]
    secret = path.rsplit("/", 1)[1].removesuffix(".ics")
    # Stored hashed: the secret is in no column of the feed table or of the audit trail.
    feed = CalendarFeed.objects.get(user=carol)
    assert secret not in f"{feed.prefix} {feed.digest}" and feed.prefix == secret[:8]
    assert all(secret not in str(v) for v in AuditEvent.objects.values_list("entity_id", "new_value", "reason"))
    assert AuditEvent.objects.filter(entity_type="calendar_feed", action="create", actor=carol).count() == 1

    # Without a session or token: the same events as her own calendar.
    anonymous = Client()
    response = anonymous.get(f"/{path}")
    assert response["Cache-Control"] == "private, no-store"
    by_feed = events(response)
    own = events(token_client(carol).get("/api/v1/calendar/me.ics"))
    assert set(by_feed) == set(own) == {f"visit-{setup['dose'].pk}@trialsite"}
    assert {uid: e["summary"] for uid, e in by_feed.items()} == {uid: e["summary"] for uid, e in own.items()}
    assert "Test Person" not in response.content.decode()

    # A new address stops the old one; stopping the feed stops the new one. Both audited.
    new_url = feed_url_of(staff_client.post("/account/calendar-feed/"))
    new_path = "/" + new_url.split("://", 1)[1].split("/", 1)[1]
    assert anonymous.get(f"/{path}").status_code == 404
    assert set(events(anonymous.get(new_path))) == set(own)
    response = staff_client.post("/account/calendar-feed/revoke/")
    assert response.status_code == 302 and response["Location"] == "/account/"
    response = anonymous.get(new_path)
    assert response.status_code == 404 and b"VEVENT" not in response.content
    assert CalendarFeed.objects.filter(user=carol).count() == 2
    assert not CalendarFeed.objects.filter(user=carol, revoked_at__isnull=True).exists()
    assert AuditEvent.objects.filter(entity_type="calendar_feed", field="revoked_at", actor=carol).count() == 2
    assert anonymous.get("/calendar/feed/not-a-feed-secret-at-all.ics").status_code == 404
