"""The home page's worklists: each site's own "today" (two time zones, a moved clock), scoping to the user's sites,
blinding, the acknowledge and retry actions (audited), and a query count that does not grow with the study."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from assessments.models import SafetyAlert
from audit.models import AuditEvent
from notifications.models import Notification
from scheduling import services as scheduling_services
from scheduling.models import Visit
from tests.dashboard.conftest import page_text
from tests.factories import staff
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

PDX_TZ = zoneinfo.ZoneInfo("America/Los_Angeles")
NYC_TZ = zoneinfo.ZoneInfo("America/New_York")
CREATED = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)  # 2 March in both zones: the same plan at both sites
# At this instant Portland is still on Monday 23 March (22:30) and New York already on Tuesday 24 March (01:30).
NOW = dt.datetime(2026, 3, 24, 5, 30, tzinfo=dt.UTC)
HIGH_RISK = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}


def visit(participant, code: str) -> Visit:
    return Visit.objects.get(participant=participant, code=code)


def raise_alert(api, user, participant) -> SafetyAlert:
    screen = visit(participant, "SCREEN")
    response = api(user).post(
        "/api/v1/responses/",
        {"participant_id": participant.participant_id, "visit_id": screen.pk, "instrument": "CSSRS_SCREEN",
         "answers": HIGH_RISK},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    return SafetyAlert.objects.filter(participant=participant).latest("id")


def failed_message(participant) -> Notification:
    # The outbox row as delivery leaves it after its last attempt (delivery itself is notifications' own tests).
    return Notification.objects.create(
        key=f"test:{participant.pk}",
        participant=participant,
        recipient_kind="participant",
        channel="email",
        template="visit_reminder",
        nominal_at=CREATED,
        due_at=CREATED,
        status=Notification.Status.FAILED,
        attempts=5,
        last_error="550 mailbox unavailable",
    )


def enrol(make_participant, site, by):
    from scheduling.services import schedule_generate

    p = make_participant("randomized", site=site, by=by)
    if not Visit.objects.filter(participant=p).exists():
        schedule_generate(participant=p, by=None)
    return p


@pytest.fixture
def therapists(pdx):
    return [staff("thera1", Role.THERAPIST, pdx), staff("thera2", Role.THERAPIST, pdx)]


@pytest.fixture
def day(make_participant, pdx, nyc, alice, bob, api, therapists):
    """One randomized participant per site, planned on 2 March; a visit booked on each site's own today, a dosing
    session next week at PDX, a high-risk alert and a failed message for each."""
    with time_machine.travel(CREATED, tick=False):
        p = enrol(make_participant, pdx, alice)
        n = enrol(make_participant, nyc, bob)
        with transaction.atomic():
            room = scheduling_services.room_create(site=pdx, name="Room A", by=None)
            scheduling_services.visit_schedule(
                visit=visit(p, "BASELINE"), start=dt.datetime(2026, 3, 23, 15, 0, tzinfo=PDX_TZ), by=alice
            )
            scheduling_services.visit_schedule(
                visit=visit(n, "BASELINE"), start=dt.datetime(2026, 3, 24, 9, 0, tzinfo=NYC_TZ), by=bob
            )
            # New York's Monday: not its today any more at NOW.
            scheduling_services.visit_schedule(
                visit=visit(n, "SCREEN"), start=dt.datetime(2026, 3, 23, 10, 0, tzinfo=NYC_TZ), by=bob
            )
            scheduling_services.visit_schedule(
                visit=visit(p, "DOSE1"),
                start=dt.datetime(2026, 3, 30, 9, 0, tzinfo=PDX_TZ),
                room=room,
                staff=["thera1", "thera2"],
                by=alice,
            )
        alerts = {"p": raise_alert(api, alice, p), "n": raise_alert(api, bob, n)}
        failed = {"p": failed_message(p), "n": failed_message(n)}
    return {"p": p, "n": n, "alerts": alerts, "failed": failed}


@pytest.fixture
def at_now(day):
    """The rest of the test runs at NOW, after the day was set up."""
    with time_machine.travel(NOW, tick=False) as clock:
        yield clock


def home(client, user, when=NOW, **params):
    """The home page as ``user`` sees it at ``when`` (signed in then: a session lives for hours, not across days)."""
    with time_machine.travel(when, tick=False):
        client.force_login(user)
        response = client.get("/home/", params)
    assert response.status_code == 200
    return response


def opened(client, user, key, when=NOW):
    """The home page with the list ``key`` open: that list's worklist (the others show their count only)."""
    worklists = {wl.key: wl for wl in home(client, user, when, list=key).context["worklists"]}
    assert [k for k, wl in worklists.items() if wl.page is not None] == [key]
    return worklists[key]


def lists(client, user, when=NOW) -> dict[str, list]:
    """Every list's rows, each list opened in turn; each count is the rows' number."""
    out = {}
    for key in [wl.key for wl in home(client, user, when).context["worklists"]]:
        wl = opened(client, user, key, when)
        if wl.kind == "alert" or wl.kind == "notification":
            out[wl.key] = [row.participant.participant_id for row in wl.page]
        else:
            out[wl.key] = [(v.participant.participant_id, v.code) for v in wl.page]
        assert wl.count == len(out[wl.key])
    return out


def test_the_page_opens_one_list_and_counts_them_all(client, day, at_now, alice):
    """By default the first list that holds anything is open; every list shows its count and a link that opens it."""
    client.force_login(alice)
    with time_machine.travel(NOW, tick=False):
        response = client.get("/home/")
        body = page_text(response)
    worklists = response.context["worklists"]
    assert [wl.key for wl in worklists if wl.page is not None] == ["alerts"]
    assert '<a href="?list=alerts#alerts" aria-current="page">Open safety alerts <span class="count">1</span>' in body
    assert '<a href="?list=overdue#overdue">Overdue visits <span class="count">1</span></a>' in body
    assert (
        '<a href="?list=reschedule#reschedule">Visits that need rescheduling <span class="count">0</span></a>' in body
    )
    assert body.count('<section class="worklist"') == 1 and 'id="alerts-title"' in body
    # An unknown list name opens the default one.
    with time_machine.travel(NOW, tick=False):
        fallback = client.get("/home/", {"list": "nope"})
    assert [wl.key for wl in fallback.context["worklists"] if wl.page is not None] == ["alerts"]


def test_each_site_has_its_own_today(client, day, alice, bob):
    p, n = day["p"].participant_id, day["n"].participant_id
    assert lists(client, alice) == {
        "alerts": [p],
        "today": [(p, "BASELINE")],  # 15:00 on Portland's Monday
        "closing": [(p, "PREP2")],  # closes on Portland's today
        "overdue": [(p, "PREP1")],
        "reschedule": [],
        "questionnaires-due": [],
        # BASELINE's self-reports are still open (window to 30 March), its target date (16 March) has passed.
        "questionnaires-overdue": [(p, "BASELINE")],
        "dosing": [(p, "DOSE1")],
        "failed": [p],
    }
    assert lists(client, bob) == {
        "alerts": [n],
        "today": [(n, "BASELINE")],  # 09:00 on New York's Tuesday; its Monday screening is not today
        "closing": [],
        "overdue": [(n, "PREP1"), (n, "PREP2")],  # PREP2 closed on New York's Monday
        "reschedule": [],
        "questionnaires-due": [],
        "questionnaires-overdue": [(n, "BASELINE")],
        "dosing": [],
        "failed": [n],
    }


def test_a_coordinator_of_both_sites_sees_both_days_and_a_deviation_takes_a_visit_off_overdue(
    client, day, pdx, nyc, bob
):
    carol = staff("carol", Role.COORDINATOR, pdx, nyc)
    p, n = day["p"].participant_id, day["n"].participant_id
    seen = lists(client, carol)
    assert seen["today"] == [(p, "BASELINE"), (n, "BASELINE")]  # by start: 22:00 UTC on the 23rd, 13:00 UTC on the 24th
    assert seen["overdue"] == [(n, "PREP1"), (p, "PREP1"), (n, "PREP2")]  # by window end, then participant
    with transaction.atomic():
        scheduling_services.deviation_record(
            participant=day["n"], visit=visit(day["n"], "PREP1"), type="missed_visit", description="away", by=bob
        )
    assert lists(client, carol)["overdue"] == [(p, "PREP1"), (n, "PREP2")]


def test_the_clock_moves_the_lists(client, day, alice):
    p = day["p"].participant_id
    # A day later in Portland: the BASELINE slot is past, PREP2 has closed, PREP3 (closes 30 March) is not yet near.
    later = NOW + dt.timedelta(days=1)
    assert [v.code for v in opened(client, alice, "today", later).page] == []
    assert [v.code for v in opened(client, alice, "overdue", later).page] == ["PREP1", "PREP2"]
    assert [v.code for v in opened(client, alice, "closing", later).page] == []
    # Four days later (Friday 27 March in Portland): everything closing on the 30th is listed, the booked but not
    # completed BASELINE too; DOSE1 is still ahead.
    friday = NOW + dt.timedelta(days=4)
    closing_list = opened(client, alice, "closing", friday)
    closing = [(v.participant.participant_id, v.code) for v in closing_list.page]
    assert sorted(closing) == [(p, "BASELINE"), (p, "PREP3"), (p, "SCREEN")]
    assert {v.window_end for v in closing_list.page} == {dt.date(2026, 3, 30)}
    assert [v.code for v in opened(client, alice, "dosing", friday).page] == ["DOSE1"]


def test_a_coordinator_sees_nothing_of_another_site(client, day, at_now, alice, bob):
    client.force_login(alice)
    with time_machine.travel(NOW, tick=False):
        body = page_text(client.get("/home/"))
    assert day["p"].participant_id in body
    assert day["n"].participant_id not in body
    assert "NYC" not in body
    # Acting on the other site's alert or message is a 404, and changes nothing.
    client.force_login(staff("ivy-pdx", Role.INVESTIGATOR, day["p"].site))
    assert client.post(f"/alerts/{day['alerts']['n'].pk}/acknowledge/", {"note": "x"}).status_code == 404
    client.force_login(alice)
    assert client.post(f"/notifications/{day['failed']['n'].pk}/retry/").status_code == 404
    assert SafetyAlert.objects.get(pk=day["alerts"]["n"].pk).acknowledged_at is None
    assert Notification.objects.get(pk=day["failed"]["n"].pk).status == "failed"


def test_the_page_shows_the_rows_in_site_time(client, day, at_now, alice):
    client.force_login(alice)
    with time_machine.travel(NOW, tick=False):
        body = "".join(page_text(client.get("/home/", {"list": key})) for key in ("today", "dosing", "failed"))
    assert "2026-03-23 15:00 PDT" in body  # the BASELINE slot, in Portland's time
    assert "Mon 2026-03-30 09:00–17:00 PDT" in body  # the dosing session
    assert "<td>Room A</td>" in body and "<td>thera1, thera2</td>" in body
    assert "550 mailbox unavailable" in body


ARM_WORDS = ("mdma", "placebo")  # the test study's arm codes; their labels are the same words


def test_a_blinded_rater_sees_no_arm_while_the_scan_finds_it_where_it_is_shown(client, day, at_now, pdx, api):
    rater = staff("rita", Role.RATER, pdx)
    client.force_login(rater)
    with time_machine.travel(NOW, tick=False):
        keys = [wl.key for wl in client.get("/home/").context["worklists"]]
        body = "".join(page_text(client.get("/home/", {"list": key})) for key in keys)
    assert day["p"].participant_id in body  # the rater's lists are not empty
    assert [w for w in ARM_WORDS if w in body.lower()] == []
    # The home page shows no arm to any role; the same scan over the participant as an unblinded administrator
    # reads it, so the words are the right ones to look for.
    admin = staff("ada", Role.ADMIN, pdx)
    shown = api(admin).get(f"/api/v1/participants/{day['p'].participant_id}/").content.decode().lower()
    assert [w for w in ARM_WORDS if w in shown] != []


def test_an_investigator_acknowledges_an_alert_with_a_note(client, day, at_now, alice, pdx):
    alert = day["alerts"]["p"]
    url = f"/alerts/{alert.pk}/acknowledge/"
    # A coordinator reads the alert but has no form; posting anyway is refused by the service, with its message.
    client.force_login(alice)
    with time_machine.travel(NOW, tick=False):
        body = page_text(client.get("/home/"))
    assert "An investigator at this site acknowledges this alert." in body and url not in body
    response = client.post(url, {"note": "seen"}, follow=True)
    assert "only an investigator at this site can acknowledge a safety alert" in response.content.decode()
    ivy = staff("ivy", Role.INVESTIGATOR, pdx)
    client.force_login(ivy)
    with time_machine.travel(NOW, tick=False):
        assert f'action="{url}"' in page_text(client.get("/home/"))
    # An empty note is refused (htmx: the row comes back with the message).
    response = client.post(url, {"note": " "}, headers={"HX-Request": "true"})
    assert "an acknowledgement needs a note" in page_text(response)
    response = client.post(
        url, {"note": "Called the participant; safety plan in place."}, headers={"HX-Request": "true"}
    )
    row = page_text(response)
    assert row.startswith(f'<li class="alert-item severity-high" id="alert-{alert.pk}">')
    assert "Acknowledged by ivy" in row and "safety plan in place" in row
    alert.refresh_from_db()
    assert (
        alert.acknowledged_by == ivy and alert.acknowledgement_note == "Called the participant; safety plan in place."
    )
    event = AuditEvent.objects.get(entity_type="safety_alert", entity_id=str(alert.pk), field="acknowledgement_note")
    assert (event.actor_username, event.new_value) == ("ivy", alert.acknowledgement_note)
    # Without htmx: back to home with the message; a second acknowledgement is refused.
    response = client.post(url, {"note": "again"}, follow=True)
    assert response.redirect_chain[-1][0] == "/home/?list=alerts#alerts"
    assert "this alert was already acknowledged" in response.content.decode()
    with time_machine.travel(NOW, tick=False):
        assert lists(client, ivy)["alerts"] == []


def test_a_coordinator_retries_a_failed_message(client, day, at_now, alice):
    row = day["failed"]["p"]
    client.force_login(alice)
    with time_machine.travel(NOW, tick=False):
        response = client.post(f"/notifications/{row.pk}/retry/", follow=True)
    assert response.redirect_chain[-1][0] == "/home/?list=failed#failed"
    assert "The message will be sent again." in response.content.decode()
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 0)
    event = AuditEvent.objects.get(entity_type="notification", entity_id=str(row.pk), field="status")
    assert (event.actor_username, event.old_value, event.new_value, event.reason) == (
        "alice", "failed", "pending", "manual retry"
    )  # fmt: skip
    # Again: it is no longer failed (htmx gets the row back with the service's message).
    response = client.post(f"/notifications/{row.pk}/retry/", headers={"HX-Request": "true"})
    assert "only a failed message can be retried; this one is pending" in page_text(response)
    assert lists(client, alice)["failed"] == []


def test_a_therapist_has_no_retry_and_cannot_post_one(client, day, at_now, therapists):
    client.force_login(therapists[0])
    with time_machine.travel(NOW, tick=False):
        response = client.get("/home/", {"list": "failed"})
        body = page_text(response)
    assert [wl.count for wl in response.context["worklists"] if wl.key == "failed"] == [0]
    assert "550 mailbox unavailable" not in body  # the outbox is for the roles that manage participants
    assert client.post(f"/notifications/{day['failed']['p'].pk}/retry/").status_code == 404


def test_lists_are_paginated_each_on_its_own(client, make_participant, pdx, alice):
    with time_machine.travel(CREATED, tick=False):
        people = [enrol(make_participant, pdx, alice) for _ in range(22)]
    client.force_login(alice)
    with time_machine.travel(NOW, tick=False):
        first = page_text(client.get("/home/", {"list": "overdue"}))
        second = client.get("/home/", {"list": "overdue", "overdue-page": "2"})
        past_the_end = client.get("/home/", {"list": "overdue", "overdue-page": "9"})
    overdue = {wl.key: wl for wl in second.context["worklists"]}["overdue"]
    assert overdue.count == 22 and overdue.page.number == 2 and len(overdue.page) == 2
    assert 'href="?list=overdue&amp;overdue-page=2#overdue" rel="next"' in first
    assert "Page 1 of 2" in first
    assert 'href="?list=overdue&amp;overdue-page=1#overdue" rel="prev"' in page_text(second)
    assert {wl.key: wl for wl in past_the_end.context["worklists"]}["overdue"].page.number == 2
    # The other lists keep their count; their rows are read when they are opened.
    closing = {wl.key: wl for wl in second.context["worklists"]}["closing"]
    assert closing.page is None and closing.count == 22
    assert {v.participant_id for v in overdue.page} <= {p.pk for p in people}


def grow(make_participant, api, pdx, alice, count: int) -> None:
    with time_machine.travel(CREATED, tick=False):
        for _ in range(count):
            p = enrol(make_participant, pdx, alice)
            raise_alert(api, alice, p)
            failed_message(p)


def home_queries(client, user) -> dict[str, int]:
    """Queries per list opened."""
    client.force_login(user)
    counted = {}
    for key in ("alerts", "today", "closing", "overdue", "reschedule", "questionnaires-overdue", "dosing", "failed"):
        with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as queries:
            assert client.get("/home/", {"list": key}).status_code == 200
        counted[key] = len(queries)
    return counted


def test_home_costs_the_same_queries_for_a_small_and_a_larger_study(client, day, make_participant, api, pdx, alice):
    small = home_queries(client, alice)
    grow(make_participant, api, pdx, alice, 12)
    larger = home_queries(client, alice)
    assert lists(client, alice)["overdue"].__len__() == 13
    assert larger == small, f"{small} queries for 1 participant at PDX, {larger} for 13"


def test_the_home_page_writes_nothing(client, day, at_now, alice, therapists, pdx):
    """Reads never write: opening the worklists, for any role and on any page of a list, changes no table."""
    from tests.support import dbstate

    # The session row is the browser's sign-in state (its lifetime stamp), not trial data.
    names = dbstate.tables(exclude=frozenset({"django_session"}))
    for user in (alice, therapists[0], staff("ines", Role.INVESTIGATOR, pdx), staff("rita", Role.RATER, pdx)):
        client.force_login(user)  # signing in writes (last login, the session, the audit): done before the snapshot
        before = dbstate.snapshot(names)
        for params in ({}, {"list": "alerts", "alerts-page": "2"}, {"list": "overdue", "overdue-page": "1"}):
            assert client.get("/home/", params).status_code == 200
        assert dbstate.differences(before, dbstate.snapshot(names)) == {}
