"""Visit lifecycle through the API: transitions, re-planning after an anchor, deviations, withdrawal."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import transaction

from audit.models import AuditEvent
from participants import services as participant_services
from scheduling.models import ProtocolDeviation, Visit
from scheduling.services import room_create
from tests.factories import staff
from trialsite.roles import Role

RANDOMIZED = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 4, 10, 18, 0, tzinfo=dt.UTC)


@pytest.fixture
def participant(make_participant):
    with time_machine.travel(RANDOMIZED, tick=False):
        return make_participant(to="randomized")


def visit(participant, code) -> Visit:
    return Visit.objects.get(participant=participant, code=code)


def post(client, url, data):
    with time_machine.travel(LATER, tick=False):
        return client.post(url, data, format="json")


def test_complete_late_dosing_records_deviation_and_replans_dependents(participant, alice, pdx, api):
    staff("carol", Role.THERAPIST, pdx), staff("dave", Role.THERAPIST, pdx)
    room_create(site=pdx, name="Dosing 1", by=None)
    dose1 = visit(participant, "DOSE1")
    # INT1B is booked on its current target (6 Apr); moving DOSE1 pushes its window past that day.
    int1b = visit(participant, "INT1B")
    r = post(api(alice), f"/api/v1/visits/{int1b.pk}/schedule/", {"start": "2026-04-06T17:00:00Z", "staff": ["carol"]})
    assert r.status_code == 200, r.json()
    assert r.json()["status"] == "scheduled" and r.json()["staff"] == ["carol"]
    r = post(
        api(alice),
        f"/api/v1/visits/{dose1.pk}/schedule/",
        {"start": "2026-04-08T16:00:00Z", "room": "Dosing 1", "staff": ["carol", "dave"]},
    )
    assert r.status_code == 200, r.json()

    # Completed on 8 April local, two days after the window closed on 6 April.
    r = post(api(alice), f"/api/v1/visits/{dose1.pk}/complete/", {"occurred_at": "2026-04-08T16:00:00Z"})

    assert r.status_code == 200, r.json()
    assert r.json()["status"] == "completed" and r.json()["occurred_at"] == "2026-04-08T16:00:00Z"
    deviation = ProtocolDeviation.objects.get(participant=participant)
    assert (deviation.type, deviation.days_outside, deviation.visit_id) == ("out_of_window", 2, dose1.pk)
    int1a, int1b, dose2, int2c = (visit(participant, c) for c in ("INT1A", "INT1B", "DOSE2", "INT2C"))
    assert (int1a.target_date, int1a.window_start, int1a.window_end) == (dt.date(2026, 4, 9),) * 3
    assert dose2.target_date == dt.date(2026, 5, 6)  # 28 days after the ACTUAL dosing date
    assert int2c.target_date == dt.date(2026, 5, 27)  # transitively, through DOSE2
    assert visit(participant, "ENDPOINT").target_date == dt.date(2026, 7, 6)  # anchored on randomization: stays
    assert visit(participant, "PREP3").target_date == dt.date(2026, 3, 23)  # not a dependent
    assert int1b.status == "scheduled" and int1b.needs_reschedule is True
    assert int1b.target_date == dt.date(2026, 4, 15)
    moves = AuditEvent.objects.filter(entity_type="visit", entity_id=str(dose2.pk), reason="anchor moved")
    assert {(e.field, e.old_value, e.new_value) for e in moves} >= {("target_date", "2026-04-27", "2026-05-06")}
    assert AuditEvent.objects.filter(entity_id=str(int1b.pk), field="needs_reschedule", new_value=True).exists()

    listed = api(alice).get("/api/v1/visits/", {"needs_reschedule": "true"}).json()["results"]
    assert [v["code"] for v in listed] == ["INT1B"]
    devs = api(alice).get(f"/api/v1/participants/{participant.participant_id}/deviations/").json()
    assert devs[0]["type"] == "out_of_window" and devs[0]["days_outside"] == 2 and devs[0]["visit_code"] == "DOSE1"


def test_complete_early_gives_negative_days_outside(participant, alice, api):
    prep2 = visit(participant, "PREP2")  # window 13..23 March
    with time_machine.travel(dt.datetime(2026, 3, 12, 20, 0, tzinfo=dt.UTC), tick=False):
        r = api(alice).post(
            f"/api/v1/visits/{prep2.pk}/complete/", {"occurred_at": "2026-03-11T18:00:00Z"}, format="json"
        )
    assert r.status_code == 200, r.json()
    assert ProtocolDeviation.objects.get(visit=prep2).days_outside == -2
    assert visit(participant, "PREP3").target_date == dt.date(2026, 3, 18)


def test_complete_inside_window_records_no_deviation(participant, alice, api):
    prep1 = visit(participant, "PREP1")
    r = post(api(alice), f"/api/v1/visits/{prep1.pk}/complete/", {"occurred_at": "2026-03-10T18:00:00Z"})
    assert r.status_code == 200
    assert not ProtocolDeviation.objects.exists()
    assert visit(participant, "PREP2").target_date == dt.date(2026, 3, 17)


def test_illegal_transition_names_both_statuses(participant, alice, api):
    prep1 = visit(participant, "PREP1")
    post(api(alice), f"/api/v1/visits/{prep1.pk}/cancel/", {"reason": "participant ill"})

    r = post(api(alice), f"/api/v1/visits/{prep1.pk}/complete/", {"occurred_at": "2026-03-10T18:00:00Z"})

    assert r.status_code == 400
    assert "'cancelled'" in r.json()["detail"] and "'completed'" in r.json()["detail"]
    prep1.refresh_from_db()
    assert prep1.status == "cancelled" and prep1.occurred_at is None


def test_bad_input_is_400_per_field_never_500(participant, alice, api):
    prep1 = visit(participant, "PREP1")
    r = post(api(alice), f"/api/v1/visits/{prep1.pk}/complete/", {"occurred_at": "yesterday"})
    assert r.status_code == 400 and "occurred_at" in r.json()
    r = post(api(alice), f"/api/v1/visits/{prep1.pk}/complete/", {"occurred_at": "2027-01-01T00:00:00Z"})
    assert r.status_code == 400 and r.json()["occurred_at"] == ["cannot be in the future"]
    r = post(api(alice), f"/api/v1/visits/{prep1.pk}/miss/", {})
    assert r.status_code == 400 and "reason" in r.json()
    r = post(
        api(alice),
        f"/api/v1/visits/{prep1.pk}/schedule/",
        {"start": "2026-04-01T10:00:00Z", "end": "2026-04-01T09:00:00Z"},
    )
    assert r.status_code == 400 and "end" in r.json()
    assert visit(participant, "PREP1").status == "planned"


def test_miss_records_missed_visit_deviation_and_frees_bookings(participant, alice, pdx, api):
    staff("carol", Role.THERAPIST, pdx)
    prep1 = visit(participant, "PREP1")
    post(api(alice), f"/api/v1/visits/{prep1.pk}/schedule/", {"start": "2026-03-09T17:00:00Z", "staff": ["carol"]})
    assert prep1.bookings.count() == 1

    r = post(api(alice), f"/api/v1/visits/{prep1.pk}/miss/", {"reason": "no show"})

    assert r.status_code == 200 and r.json()["status"] == "missed" and r.json()["missed_reason"] == "no show"
    assert prep1.bookings.count() == 0
    assert ProtocolDeviation.objects.get(visit=prep1).type == "missed_visit"


def test_unscheduled_visit_has_no_window(participant, alice, api):
    r = post(api(alice), f"/api/v1/participants/{participant.participant_id}/visits/", {"kind": "assessment"})

    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["code"] == "UNS1" and body["unscheduled"] is True and body["status"] == "planned"
    assert body["target_date"] is None and body["window_start"] is None and body["window_end"] is None
    assert Visit.objects.get(pk=body["id"]).participant == participant
    r = post(api(alice), f"/api/v1/participants/{participant.participant_id}/visits/", {"kind": "party"})
    assert r.status_code == 400 and "kind" in r.json()


def test_staff_record_other_deviations_and_site_list(participant, alice, bob, api, make_participant, nyc):
    r = post(
        api(alice),
        f"/api/v1/participants/{participant.participant_id}/deviations/",
        {"type": "procedure", "description": "vitals not taken before dosing"},
    )
    assert r.status_code == 201, r.json()
    assert r.json()["type"] == "procedure" and r.json()["recorded_by"] == "alice"
    assert ProtocolDeviation.objects.get(pk=r.json()["id"]).description == "vitals not taken before dosing"
    r = post(api(alice), f"/api/v1/participants/{participant.participant_id}/deviations/", {"type": "procedure"})
    assert r.status_code == 400 and "description" in r.json()

    site_list = api(alice).get("/api/v1/deviations/", {"site": "PDX"}).json()
    assert [d["participant_id"] for d in site_list["results"]] == [participant.participant_id]
    assert api(bob).get("/api/v1/deviations/").json()["results"] == []


def test_rater_cannot_change_visits(participant, personas, api):
    prep1 = visit(participant, "PREP1")
    r = post(api(personas["rater"]), f"/api/v1/visits/{prep1.pk}/cancel/", {"reason": "x"})
    assert r.status_code == 403
    assert visit(participant, "PREP1").status == "planned"


@pytest.mark.parametrize("level", ["stop_follow_up", "stop_data_use"])
def test_withdrawal_cancels_open_visits(participant, alice, level):
    prep1 = visit(participant, "PREP1")
    with time_machine.travel(dt.datetime(2026, 3, 11, 18, 0, tzinfo=dt.UTC), tick=False), transaction.atomic():
        from scheduling import services

        services.visit_complete(visit=prep1, occurred_at=dt.datetime(2026, 3, 10, 18, 0, tzinfo=dt.UTC), by=alice)
        participant_services.participant_withdraw(
            participant=participant, level=level, reason="moved away", date=dt.date(2026, 3, 11), by=alice
        )

    statuses = dict(Visit.objects.filter(participant=participant).values_list("code", "status"))
    assert statuses.pop("PREP1") == "completed"
    # SCREEN and BASELINE never happened in this test either, so every open visit is cancelled.
    assert set(statuses.values()) == {"cancelled"}
    assert AuditEvent.objects.filter(
        entity_type="visit", field="status", new_value="cancelled", reason=f"participant withdrawn ({level})"
    ).count() == len(statuses)


def test_stop_contact_keeps_visits(participant, alice):
    with transaction.atomic():
        participant_services.participant_withdraw(
            participant=participant, level="stop_contact", reason="no calls", date=dt.date(2026, 3, 11), by=alice
        )
    assert set(Visit.objects.filter(participant=participant).values_list("status", flat=True)) == {"planned"}
