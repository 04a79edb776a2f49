"""Concomitant medications over the API (record, correct with a reason, stop), the dosing-booking refusal while a
prohibited medication is taken or washing out (409 naming it and the washout end), the investigator's override, site
scoping, rater blinding and the list's query count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from safety import services
from safety.models import ConcomitantMedication, MedicationOverride
from scheduling.models import Booking, Visit
from scheduling.services import room_create
from tests.factories import staff
from tests.safety.conftest import NOW
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

# 30 March 2026, 09:00 in Portland (PDT, UTC-7): after NOW (5 March), within the first dosing session's reach.
DOSE_START = "2026-03-30T16:00:00Z"


@pytest.fixture
def team(pdx):
    return {name: staff(name, Role.THERAPIST, pdx) for name in ("carol", "dave")}


@pytest.fixture
def room(pdx):
    return room_create(site=pdx, name="Dosing 1", by=None)


def payload(participant, **extra):
    return {
        "participant_id": participant.participant_id,
        "name": "sertraline",
        "medication_class": "ssri",
        "dose_amount": "50",
        "dose_unit": "mg",
        "frequency": "once daily",
        "route": "oral",
        "indication": "depressive symptoms",
        "start_date": "2025-11-01",
        **extra,
    }


def record(participant, by, **extra):
    values = {
        "participant": participant,
        "name": "sertraline",
        "medication_class": "ssri",
        "dose_amount": 50,
        "dose_unit": "mg",
        "start_date": dt.date(2025, 11, 1),
        **extra,
    }
    with transaction.atomic():
        return services.medication_record(by=by, **values)


def book(client, visit):
    return client.post(
        f"/api/v1/visits/{visit.pk}/schedule/",
        {"start": DOSE_START, "room": "Dosing 1", "staff": ["carol", "dave"]},
        format="json",
    )


def audit_rows(entity_type, entity_id, **filters):
    return AuditEvent.objects.filter(entity_type=entity_type, entity_id=str(entity_id), **filters)


def test_a_coordinator_records_a_medication_and_it_is_audited(participant, alice, api):
    r = api(alice).post("/api/v1/concomitant-medications/", payload(participant), format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    medication = ConcomitantMedication.objects.get()
    assert (medication.name, medication.medication_class, medication.dose_unit) == ("sertraline", "ssri", "mg")
    assert medication.stop_date is None and body["ongoing"] is True and body["stop_date"] is None
    assert body["dose_amount"] == "50.000" and body["recorded_by"] == "alice" and body["site"] == "PDX"
    assert "arm" not in body
    fields = set(audit_rows("concomitant_medication", medication.pk, action="create").values_list("field", flat=True))
    assert {"name", "medication_class", "dose_amount", "dose_unit", "start_date"} <= fields


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"medication_class": "xenon"}, "medication_class"),
        ({"dose_amount": None, "dose_unit": ""}, "dose_amount"),  # neither amount nor text
        ({"dose_unit": ""}, "dose_unit"),  # an amount without its unit
        ({"dose_amount": "-5"}, "dose_amount"),
        ({"route": "by post"}, "route"),
        ({"start_date": "2026-04-01"}, "start_date"),  # in the future
        ({"start_date": "yesterday"}, "start_date"),
        ({"stop_date": "2025-10-01"}, "stop_date"),  # before the start
        ({"name": "  "}, "name"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_stores_nothing(participant, alice, api, change, field):
    r = api(alice).post("/api/v1/concomitant-medications/", payload(participant, **change), format="json")
    assert r.status_code == 400, r.content
    assert field in r.json()
    assert not ConcomitantMedication.objects.exists()


def test_a_dose_as_text_is_enough(participant, alice, api):
    r = api(alice).post(
        "/api/v1/concomitant-medications/",
        payload(participant, dose_amount=None, dose_unit="", dose_text="1-2 puffs as needed", medication_class="other"),
        format="json",
    )
    assert r.status_code == 201, r.content
    assert ConcomitantMedication.objects.get().dose_text == "1-2 puffs as needed"


def test_a_correction_needs_a_reason_and_the_audit_keeps_the_earlier_value(participant, alice, api):
    medication = record(participant, alice)
    client = api(alice)
    refused = client.post(
        f"/api/v1/concomitant-medications/{medication.pk}/correct/", {"dose_amount": "100"}, format="json"
    )
    assert refused.status_code == 400 and "reason" in refused.json()
    r = client.post(
        f"/api/v1/concomitant-medications/{medication.pk}/correct/",
        {"dose_amount": "100", "reason": "transcription error"},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["dose_amount"] == "100.000"
    medication.refresh_from_db()
    assert medication.dose_amount == 100
    [row] = audit_rows("concomitant_medication", medication.pk, action="update")
    assert (row.field, row.old_value, row.new_value, row.reason) == (
        "dose_amount",
        "50.000",
        "100.000",
        "transcription error",
    )
    assert ConcomitantMedication.objects.count() == 1  # corrected in place, never deleted


def test_a_taper_ends_with_a_stop_date_and_a_second_stop_is_409(participant, alice, api):
    medication = record(participant, alice)
    client = api(alice)
    r = client.post(
        f"/api/v1/concomitant-medications/{medication.pk}/stop/",
        {"stop_date": "2026-03-10", "taper_note": "25 mg for a week, then stopped"},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["stop_date"] == "2026-03-10" and r.json()["ongoing"] is False
    medication.refresh_from_db()
    assert medication.stop_date == dt.date(2026, 3, 10) and medication.taper_note.startswith("25 mg")
    assert set(
        audit_rows("concomitant_medication", medication.pk, reason="stopped").values_list("field", flat=True)
    ) == {
        "stop_date",
        "taper_note",
    }
    again = client.post(f"/api/v1/concomitant-medications/{medication.pk}/stop/", {"stop_date": "2026-03-11"})
    assert again.status_code == 409 and "already stopped on 2026-03-10" in again.json()["detail"]
    medication.refresh_from_db()
    assert medication.stop_date == dt.date(2026, 3, 10)


def test_booking_a_dosing_session_while_an_ssri_is_taken_is_409_and_changes_nothing(
    participant, alice, api, team, room
):
    record(participant, alice)
    visit = Visit.objects.get(participant=participant, code="DOSE1")
    audits_before = AuditEvent.objects.count()

    r = book(api(alice), visit)

    assert r.status_code == 409, r.content
    body = r.json()
    assert body["code"] == "prohibited_medication"
    assert "sertraline (Selective serotonin reuptake inhibitor) is being taken" in body["detail"]
    assert body["medications"] == [
        "sertraline (Selective serotonin reuptake inhibitor) is being taken; its washout ends 14 days after it stops"
    ]
    visit.refresh_from_db()
    assert (visit.status, visit.scheduled_start, visit.room_id) == ("planned", None, None)
    assert not Booking.objects.filter(visit=visit).exists() and not visit.staff.exists()
    assert AuditEvent.objects.count() == audits_before


def test_booking_inside_the_washout_is_409_naming_its_end_and_after_it_goes_ahead(participant, alice, api, team, room):
    # Stopped 20 March; a 14-day washout ends on 3 April, so 30 March is inside it.
    record(participant, alice, stop_date=dt.date(2026, 3, 20), name="phenelzine", medication_class="maoi")
    visit = Visit.objects.get(participant=participant, code="DOSE1")

    r = book(api(alice), visit)

    assert r.status_code == 409
    assert r.json()["medications"] == [
        "phenelzine (Monoamine oxidase inhibitor) stopped on 2026-03-20; its washout ends on 2026-04-03"
    ]
    assert "2026-04-03" in r.json()["detail"] and "phenelzine" in r.json()["detail"]
    visit.refresh_from_db()
    assert visit.status == "planned" and not Booking.objects.filter(visit=visit).exists()

    later = api(alice).post(
        f"/api/v1/visits/{visit.pk}/schedule/",
        {"start": "2026-04-04T16:00:00Z", "room": "Dosing 1", "staff": ["carol", "dave"]},
        format="json",
    )
    assert later.status_code == 200, later.content
    visit.refresh_from_db()
    assert visit.status == "scheduled"


def test_a_class_the_protocol_allows_does_not_block(participant, alice, api, team, room):
    record(participant, alice, name="ibuprofen", medication_class="other", dose_amount=200)
    visit = Visit.objects.get(participant=participant, code="DOSE1")
    assert book(api(alice), visit).status_code == 200
    visit.refresh_from_db()
    assert visit.status == "scheduled"


def test_only_an_investigator_overrides_and_the_booking_then_goes_ahead_with_the_override_audited(
    participant, alice, api, team, room, investigator
):
    record(participant, alice)
    visit = Visit.objects.get(participant=participant, code="DOSE1")
    body = {"visit": visit.pk, "reason": "prescriber confirms a stable low dose; risk discussed with the monitor"}

    for who in (alice, team["carol"]):
        refused = api(who).post("/api/v1/medication-overrides/", body, format="json")
        assert refused.status_code == 403, refused.content
        assert "only an investigator" in refused.json()["detail"]
    assert not MedicationOverride.objects.exists()
    assert (
        api(investigator).post("/api/v1/medication-overrides/", {"visit": visit.pk}, format="json").status_code == 400
    )

    r = api(investigator).post("/api/v1/medication-overrides/", body, format="json")
    assert r.status_code == 201, r.content
    override = MedicationOverride.objects.get()
    assert (override.visit, override.recorded_by, r.json()["visit_code"]) == (visit, investigator, "DOSE1")
    assert audit_rows("medication_override", override.pk, field="reason").get().new_value == body["reason"]

    booked = book(api(alice), visit)

    assert booked.status_code == 200, booked.content
    visit.refresh_from_db()
    assert visit.status == "scheduled" and Booking.objects.filter(visit=visit).count() == 3
    note = audit_rows("visit", visit.pk, field="medication_override").get()
    assert note.new_value.startswith(f"override {override.pk} by ivy: prescriber confirms")
    assert "sertraline" in note.new_value and note.actor_username == "alice"


def test_an_override_is_for_a_dosing_session_only(participant, investigator, api):
    visit = Visit.objects.get(participant=participant, code="BASELINE")
    r = api(investigator).post("/api/v1/medication-overrides/", {"visit": visit.pk, "reason": "x"}, format="json")
    assert r.status_code == 400 and "visit" in r.json()
    assert not MedicationOverride.objects.exists()


def test_other_sites_get_404_and_raters_do_not_see_medications(participant, alice, bob, rater, api, investigator):
    medication = record(participant, alice)
    visit = Visit.objects.get(participant=participant, code="DOSE1")
    with transaction.atomic():
        override = services.medication_override_record(visit=visit, reason="considered", by=investigator)
    for who in (bob, rater):
        client = api(who)
        assert client.get(f"/api/v1/concomitant-medications/{medication.pk}/").status_code == 404
        assert client.get("/api/v1/concomitant-medications/").json()["results"] == []
        assert client.get(f"/api/v1/medication-overrides/{override.pk}/").status_code == 404
        assert client.get("/api/v1/medication-overrides/").json()["results"] == []
        r = client.post(
            f"/api/v1/concomitant-medications/{medication.pk}/stop/", {"stop_date": "2026-03-04"}, format="json"
        )
        assert r.status_code == 404
    medication.refresh_from_db()
    assert medication.stop_date is None
    listed = api(alice).get("/api/v1/concomitant-medications/", {"participant": participant.participant_id}).json()
    assert [row["id"] for row in listed["results"]] == [medication.pk]


def test_the_list_costs_the_same_for_10_and_30_medications(make_participant, alice, api):
    people = [make_participant("enrolled") for _ in range(3)]

    def count(n):
        for i in range(n):
            record(people[i % 3], alice, name=f"med {i}")
        with CaptureQueriesContext(connection) as ctx:
            r = api(alice).get("/api/v1/concomitant-medications/", {"page_size": 100})
        assert r.status_code == 200
        return len(ctx.captured_queries), r.json()["count"]

    first, total = count(10)
    second, total2 = count(20)
    assert (total, total2) == (10, 30)
    assert first == second
    assert NOW.date() == dt.date(2026, 3, 5)
