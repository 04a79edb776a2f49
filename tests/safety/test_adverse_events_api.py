"""Recording, reading, correcting and following up adverse events over the API: bodies, rows and audit events;
a 400 per bad field; site scoping (404 outside the user's sites); the query count of the list."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from safety.models import AdverseEvent, AdverseEventFollowUp
from scheduling.models import Visit
from tests.safety.conftest import NOW, mild_values, record, sae_payload

pytestmark = pytest.mark.django_db


def test_a_coordinator_records_a_serious_event_in_site_time_stored_in_utc(participant, alice, api, requested_tasks):
    visit = Visit.objects.get(participant=participant, code="BASELINE")
    r = api(alice).post("/api/v1/adverse-events/", sae_payload(participant, visit=visit.pk), format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    event = AdverseEvent.objects.get()
    # 09:30 on the Portland clock (PST, UTC-8) is 17:30 UTC.
    assert event.onset_at == dt.datetime(2026, 3, 5, 17, 30, tzinfo=dt.UTC)
    assert body["onset_at"] == "2026-03-05T17:30:00Z"
    assert body["onset_local"] == "2026-03-05T09:30:00-08:00"
    assert (event.serious, event.serious_hospitalisation, event.serious_death) == (True, True, False)
    assert body["seriousness"] == ["serious_hospitalisation"] and body["serious"] is True
    assert event.aesi_categories == ["cardiovascular"] and body["aesi_categories"] == ["cardiovascular"]
    assert (event.visit_id, body["visit"], body["visit_code"]) == (visit.pk, visit.pk, "BASELINE")
    assert (event.recorded_by, body["recorded_by"]) == (alice, "alice")
    assert body["participant_id"] == participant.participant_id and body["site"] == "PDX"
    assert "arm" not in body and "allocation" not in str(body)
    # The clock: 24 hours from entry, and the alert asked for once the entry committed.
    assert event.reporting_due_at == event.alert_started_at + dt.timedelta(hours=24)
    assert requested_tasks == [("safety.adverse_event_notify", [event.pk])]
    fields = set(
        AuditEvent.objects.filter(entity_type="adverse_event", entity_id=str(event.pk), action="create").values_list(
            "field", flat=True
        )
    )
    assert {
        "verbatim_term",
        "onset_at",
        "severity_grade",
        "serious_hospitalisation",
        "serious",
        "reporting_due_at",
    } <= (fields)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"severity_grade": 6}, "severity_grade"),
        ({"severity_grade": "severe"}, "severity_grade"),
        ({"relatedness_drug": "maybe"}, "relatedness_drug"),
        ({"seriousness": ["serious_embarrassment"]}, "seriousness"),
        ({"aesi_categories": ["unicorns"]}, "aesi_categories"),
        ({"onset_at": "2026-03-06T09:30"}, "onset_at"),
        ({"onset_at": "yesterday"}, "onset_at"),
        ({"resolved_at": "2026-03-04T09:00"}, "resolved_at"),
        ({"verbatim_term": ""}, "verbatim_term"),
        ({"outcome": "fatal"}, "serious_death"),
        ({"visit": 999999}, "visit"),
    ],
)
def test_each_bad_field_answers_400_naming_it_and_records_nothing(participant, alice, api, change, field):
    r = api(alice).post("/api/v1/adverse-events/", sae_payload(participant, **change), format="json")
    assert r.status_code == 400, r.content
    assert field in r.json(), r.json()
    assert not AdverseEvent.objects.exists()
    assert not AuditEvent.objects.filter(entity_type="adverse_event").exists()


def test_another_participants_visit_is_refused(participant, make_participant, alice, api):
    other = make_participant("randomized")
    visit = Visit.objects.filter(participant=other).first()
    r = api(alice).post("/api/v1/adverse-events/", sae_payload(participant, visit=visit.pk), format="json")
    assert r.status_code == 400 and r.json()["visit"] == ["not a visit of this participant"]
    assert not AdverseEvent.objects.exists()


def test_outside_the_users_sites_an_event_does_not_exist(participant, alice, bob, api, requested_tasks):
    event = record(alice, **mild_values(participant))
    client = api(bob)
    assert client.get(f"/api/v1/adverse-events/{event.pk}/").status_code == 404
    listed = client.get("/api/v1/adverse-events/")
    assert listed.status_code == 200 and listed.json()["results"] == []
    r = client.post("/api/v1/adverse-events/", sae_payload(participant), format="json")
    assert r.status_code == 404
    r = client.post(f"/api/v1/adverse-events/{event.pk}/correct/", {"reason": "x", "severity_grade": 2}, format="json")
    assert r.status_code == 404
    assert AdverseEvent.objects.get().severity_grade == 1 and AdverseEvent.objects.count() == 1


def test_a_rater_cannot_record_an_event(participant, personas, api, study):
    study.safety_hidden_from_raters = False  # the rater sees events here, but still may not write them
    study.save(update_fields=["safety_hidden_from_raters"])
    r = api(personas["rater"]).post("/api/v1/adverse-events/", sae_payload(participant), format="json")
    assert r.status_code == 403 and "record adverse events" in r.json()["detail"]
    assert not AdverseEvent.objects.exists()


def test_list_filters_and_its_query_count_does_not_grow_with_rows(
    participant, alice, api, requested_tasks, django_assert_num_queries
):
    client = api(alice)
    for _ in range(2):
        record(alice, **mild_values(participant))
    assert client.post("/api/v1/adverse-events/", sae_payload(participant), format="json").status_code == 201
    with CaptureQueriesContext(connection) as few:
        r = client.get("/api/v1/adverse-events/")
    assert r.json()["count"] == 3
    for grade in (1, 2, 3, 4, 5, 1, 2, 3, 4, 5):
        record(alice, **mild_values(participant, severity_grade=grade))
    with django_assert_num_queries(len(few.captured_queries)):
        r = client.get("/api/v1/adverse-events/")
    assert r.json()["count"] == 13
    serious = client.get("/api/v1/adverse-events/?serious=true").json()
    assert [row["verbatim_term"] for row in serious["results"]] == ["chest pain and palpitations during session"]
    assert client.get("/api/v1/adverse-events/?aesi=true").json()["count"] == 1
    assert client.get("/api/v1/adverse-events/?min_grade=4").json()["count"] == 4
    assert client.get("/api/v1/adverse-events/?unreviewed=true").json()["count"] == 13
    assert client.get("/api/v1/adverse-events/?site=NYC").json()["count"] == 0


def test_a_correction_needs_a_reason_and_the_trail_keeps_the_old_value(participant, alice, api, requested_tasks):
    event = record(alice, **mild_values(participant))
    client = api(alice)
    r = client.post(f"/api/v1/adverse-events/{event.pk}/correct/", {"severity_grade": 2}, format="json")
    assert r.status_code == 400 and "reason" in r.json()
    r = client.post(
        f"/api/v1/adverse-events/{event.pk}/correct/",
        {"severity_grade": 2, "reason": "grade confirmed by the investigator"},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["severity_grade"] == 2 and AdverseEvent.objects.get().severity_grade == 2
    trail = AuditEvent.objects.get(entity_type="adverse_event", action="update", field="severity_grade")
    assert (trail.old_value, trail.new_value, trail.reason) == (1, 2, "grade confirmed by the investigator")
    assert AdverseEvent.objects.count() == 1  # corrected in place, never deleted and entered again
    assert requested_tasks == []  # still neither serious nor of special interest


def test_a_correction_that_makes_an_event_serious_starts_the_clock_and_alerts(participant, alice, api, requested_tasks):
    event = record(alice, **mild_values(participant))
    assert event.reporting_due_at is None
    r = api(alice).post(
        f"/api/v1/adverse-events/{event.pk}/correct/",
        {"seriousness": ["serious_important_medical_event"], "reason": "admitted overnight for observation"},
        format="json",
    )
    assert r.status_code == 200, r.content
    event.refresh_from_db()
    assert event.serious and event.serious_important_medical_event and event.reporting_due_at is not None
    assert r.json()["serious"] is True
    assert requested_tasks == [("safety.adverse_event_notify", [event.pk])]
    assert AuditEvent.objects.filter(entity_type="adverse_event", action="update", field="serious").exists()


def test_a_correction_that_changes_nothing_or_an_unknown_field_is_refused(participant, alice, api, requested_tasks):
    event = record(alice, **mild_values(participant))
    client = api(alice)
    r = client.post(f"/api/v1/adverse-events/{event.pk}/correct/", {"severity_grade": 1, "reason": "r"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "unchanged"
    r = client.post(
        f"/api/v1/adverse-events/{event.pk}/correct/", {"resolved_at": "2026-03-01T08:00", "reason": "r"}, format="json"
    )
    assert r.status_code == 400 and "resolved_at" in r.json()
    assert not AuditEvent.objects.filter(entity_type="adverse_event", action="update").exists()


def test_follow_ups_keep_the_history_and_bring_the_outcome_up_to_date(participant, alice, api, requested_tasks):
    r = api(alice).post("/api/v1/adverse-events/", sae_payload(participant), format="json")
    event_id = r.json()["id"]
    client = api(alice)
    first = client.post(f"/api/v1/adverse-events/{event_id}/follow-ups/", {"note": "admitted to cardiology"})
    assert first.status_code == 201, first.content
    second = client.post(
        f"/api/v1/adverse-events/{event_id}/follow-ups/",
        {"note": "discharged, ECG normal", "outcome": "recovered", "resolved_at": "2026-03-05T09:55"},
    )
    assert second.status_code == 201, second.content
    assert client.post(f"/api/v1/adverse-events/{event_id}/follow-ups/", {"note": ""}).status_code == 400
    detail = client.get(f"/api/v1/adverse-events/{event_id}/").json()
    assert [f["note"] for f in detail["follow_ups"]] == ["admitted to cardiology", "discharged, ECG normal"]
    assert detail["outcome"] == "recovered" and detail["resolved_at"] == "2026-03-05T17:55:00Z"
    assert AdverseEventFollowUp.objects.count() == 2
    update = AuditEvent.objects.get(entity_type="adverse_event", action="update", field="outcome")
    assert (update.old_value, update.new_value) == ("recovering", "recovered")
    assert update.reason == f"follow-up {second.json()['id']}"


def test_the_api_schema_documents_the_adverse_event_endpoints(api, alice):
    schema = api(alice).get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/adverse-events/", "/api/v1/adverse-events/{adverse_event_id}/reviews/"} <= set(paths)
    assert "AdverseEventInputRequest" in schema.json()["components"]["schemas"]


def test_naive_entry_on_a_dst_morning_reads_the_site_clock(participant, alice, api, requested_tasks, clock):
    # 8 March 2026: the US springs forward at 02:00; 09:30 that morning in Portland is PDT (UTC-7).
    clock.move_to(dt.datetime(2026, 3, 9, 18, tzinfo=dt.UTC))
    r = api(alice).post("/api/v1/adverse-events/", sae_payload(participant, onset_at="2026-03-08T09:30"), format="json")
    assert r.status_code == 201, r.content
    assert AdverseEvent.objects.get().onset_at == dt.datetime(2026, 3, 8, 16, 30, tzinfo=dt.UTC)
    assert NOW < AdverseEvent.objects.get().recorded_at
