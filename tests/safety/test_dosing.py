"""Dosing sessions: opening the record, doses, the vital-signs grid against the protocol's declared timepoints,
alerts over the declared thresholds (joining the questionnaire alerts' list, acknowledgement and escalation),
corrections with a reason, closing with missing timepoints; serious adverse events in the same alert list without a
second mail; blinding, site scoping and the query count of the list."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from assessments import services as assessment_services
from assessments.models import SafetyAlert
from audit.models import AuditEvent
from safety import services
from safety.models import DosingSession, VitalSign
from scheduling.models import Visit
from tests.safety.conftest import NOW, mild_values, record

pytestmark = pytest.mark.django_db

# The shipped illustrative protocols' timepoints (mapp-v1, the test study's protocol).
MAPP_TIMEPOINTS = ["PRE", "T30", "T60", "T90", "T120", "T180", "T240", "T300", "T360", "DISCHARGE"]


@pytest.fixture
def alert_tasks(monkeypatch):
    """The alert tasks the assessments services ask for on commit, by name."""
    requested: list[tuple[str, list[object]]] = []
    monkeypatch.setattr(
        "assessments.services.safety.send_task_on_commit",
        lambda name, args, priority=None: requested.append((name, args)),
    )
    return requested


@pytest.fixture
def dose_visit(participant):
    return Visit.objects.get(participant=participant, code="DOSE1")


@pytest.fixture
def session(dose_visit, alice):
    with transaction.atomic():
        return services.dosing_session_open(
            visit=dose_visit, by=alice, kit_identifier="KIT-0042", started_at=NOW - dt.timedelta(hours=3)
        )


def vitals(session, by, code="T60", **values):
    values.setdefault("measured_at", NOW - dt.timedelta(minutes=30))
    with transaction.atomic():
        return services.vital_sign_record(session=session, by=by, timepoint_code=code, **values)


def test_a_coordinator_opens_a_session_for_a_dosing_visit_with_who_was_present(
    participant, dose_visit, alice, investigator, api
):
    r = api(alice).post(
        "/api/v1/dosing-sessions/",
        {
            "visit": dose_visit.pk,
            "kit_identifier": "KIT-7",
            "started_at": "2026-03-05T07:00",
            "present_staff": ["alice", "ivy"],
            "present_others": [{"name": "Visiting monitor", "role": "monitor"}],
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    session = DosingSession.objects.get()
    # 07:00 on the Portland clock (PST) is 15:00 UTC.
    assert session.started_at == dt.datetime(2026, 3, 5, 15, 0, tzinfo=dt.UTC)
    assert body["started_at"] == "2026-03-05T15:00:00Z"
    assert set(session.present_staff.values_list("username", flat=True)) == {"alice", "ivy"}
    assert body["present_staff"] == ["alice", "ivy"]
    assert body["present_others"] == [{"name": "Visiting monitor", "role": "monitor"}]
    assert body["missing_timepoints"] == MAPP_TIMEPOINTS
    assert [row["timepoint"]["code"] for row in body["grid"]] == MAPP_TIMEPOINTS
    assert body["declarations_illustrative"] is True
    assert "arm" not in body and "allocation" not in str(body)
    audit = AuditEvent.objects.filter(entity_type="dosing_session", entity_id=str(session.pk), action="create")
    assert {"visit", "kit_identifier", "started_at", "present_staff", "present_others"} <= set(
        audit.values_list("field", flat=True)
    )
    # One session per visit.
    again = api(alice).post("/api/v1/dosing-sessions/", {"visit": dose_visit.pk}, format="json")
    assert again.status_code == 409, again.content
    assert DosingSession.objects.count() == 1


def test_a_visit_that_is_not_a_dosing_visit_has_no_session(participant, alice, api):
    baseline = Visit.objects.get(participant=participant, code="BASELINE")
    r = api(alice).post("/api/v1/dosing-sessions/", {"visit": baseline.pk}, format="json")
    assert r.status_code == 400 and "visit" in r.json(), r.content
    assert not DosingSession.objects.exists()


def test_doses_are_recorded_and_a_recorded_dose_changes_only_with_a_reason(session, alice, api):
    url = f"/api/v1/dosing-sessions/{session.pk}/doses/"
    r = api(alice).post(
        url,
        {
            "initial_dose_mg": "120",
            "initial_dose_at": "2026-03-05T07:30",
            "supplemental_dose_mg": "60",
            "supplemental_dose_at": "2026-03-05T09:15",
        },
        format="json",
    )
    assert r.status_code == 200, r.content
    session.refresh_from_db()
    assert (session.initial_dose_mg, session.supplemental_dose_mg) == (Decimal("120.00"), Decimal("60.00"))
    assert r.json()["initial_dose_mg"] == 120.0 and r.json()["supplemental_dose_at"] == "2026-03-05T17:15:00Z"
    refused = api(alice).post(url, {"initial_dose_mg": "100"}, format="json")
    assert refused.status_code == 400 and "reason" in refused.json(), refused.content
    session.refresh_from_db()
    assert session.initial_dose_mg == Decimal("120.00")
    fixed = api(alice).post(url, {"initial_dose_mg": "100", "reason": "transcription error"}, format="json")
    assert fixed.status_code == 200, fixed.content
    session.refresh_from_db()
    assert session.initial_dose_mg == Decimal("100.00")
    change = AuditEvent.objects.get(
        entity_type="dosing_session", field="initial_dose_mg", action="update", reason__gt=""
    )
    assert (change.old_value, change.new_value, change.reason) == ("120.00", "100.00", "transcription error")
    # The supplemental dose comes after the initial one.
    bad = api(alice).post(url, {"supplemental_dose_at": "2026-03-05T07:00", "reason": "earlier"}, format="json")
    assert bad.status_code == 400 and "supplemental_dose_at" in bad.json(), bad.content


def test_a_vital_sign_over_threshold_raises_a_listed_alert(session, alice, investigator, api, alert_tasks):
    r = api(alice).post(
        f"/api/v1/dosing-sessions/{session.pk}/vital-signs/",
        {
            "timepoint_code": "T60",
            "measured_at": "2026-03-05T09:30",
            "systolic_bp": 172,
            "diastolic_bp": 95,
            "heart_rate": 96,
            "temperature_c": "37.2",
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    vital = VitalSign.objects.get()
    alert = SafetyAlert.objects.get()
    assert (alert.source, alert.source_id, alert.rule_code, alert.severity) == (
        "vital_sign",
        vital.pk,
        "SBP_HIGH",
        "high",
    )
    assert alert.response is None and alert.participant_id == session.participant_id
    assert "systolic_bp 172" in alert.message
    body = r.json()
    assert [a["rule_code"] for a in body["alerts"]] == ["SBP_HIGH"]
    row = next(row for row in body["grid"] if row["timepoint"]["code"] == "T60")
    assert row["vital_sign"]["systolic_bp"] == 172
    assert "T60" not in body["missing_timepoints"]
    # It joins the questionnaire alerts' list and is mailed to the investigators as they are.
    listed = api(investigator).get("/api/v1/safety-alerts/").json()["results"]
    assert [(a["id"], a["source"], a["source_id"], a["response_id"]) for a in listed] == [
        (alert.pk, "vital_sign", vital.pk, None)
    ]
    assert alert_tasks == [("assessments.safety_alert_notify", [alert.pk])]
    assert AuditEvent.objects.filter(entity_type="safety_alert", entity_id=str(alert.pk), field="source").exists()
    # And is acknowledged the same way.
    ack = api(investigator).post(f"/api/v1/safety-alerts/{alert.pk}/acknowledge/", {"note": "rechecked, 150"})
    assert ack.status_code == 200, ack.content
    alert.refresh_from_db()
    assert alert.acknowledged_by == investigator


@pytest.mark.parametrize(
    ("values", "raised"),
    [
        ({"systolic_bp": 160, "diastolic_bp": 90}, set()),  # SBP > 160: at 160, no alert
        ({"systolic_bp": 161, "diastolic_bp": 90}, {"SBP_HIGH"}),
        ({"diastolic_bp": 110}, set()),  # DBP > 110
        ({"diastolic_bp": 111}, {"DBP_HIGH"}),
        ({"heart_rate": 110}, set()),  # HR > 110
        ({"heart_rate": 111}, {"HR_HIGH"}),
        ({"temperature_c": "37.9"}, set()),  # temperature >= 38.0: just below, no alert
        ({"temperature_c": "38.0"}, {"TEMP_HIGH"}),  # at 38.0, an alert
    ],
)
def test_at_the_threshold_the_declared_comparison_decides(session, alice, alert_tasks, values, raised):
    vital = vitals(session, alice, **values)
    alerts = SafetyAlert.objects.filter(source="vital_sign", source_id=vital.pk)
    assert set(alerts.values_list("rule_code", flat=True)) == raised
    assert len(alert_tasks) == len(raised)


def test_missing_timepoints_are_listed_and_block_closing_without_a_reason(session, alice, api):
    for code in ("PRE", "T30", "T60"):
        vitals(session, alice, code=code, heart_rate=80)
    detail = api(alice).get(f"/api/v1/dosing-sessions/{session.pk}/").json()
    missing = [code for code in MAPP_TIMEPOINTS if code not in ("PRE", "T30", "T60")]
    assert detail["missing_timepoints"] == missing
    assert [row["vital_sign"] is None for row in detail["grid"]] == [c in missing for c in MAPP_TIMEPOINTS]

    url = f"/api/v1/dosing-sessions/{session.pk}/close/"
    refused = api(alice).post(url, {"ended_at": "2026-03-05T09:50"}, format="json")
    assert refused.status_code == 400, refused.content
    message = refused.json()["missing_timepoints_reason"][0]
    assert all(code in message for code in missing)
    session.refresh_from_db()
    assert session.closed_at is None and session.ended_at is None
    assert not AuditEvent.objects.filter(entity_type="dosing_session", field="closed_at").exists()

    closed = api(alice).post(
        url,
        {"ended_at": "2026-03-05T09:50", "missing_timepoints_reason": "participant asleep, not woken"},
        format="json",
    )
    assert closed.status_code == 200, closed.content
    assert closed.json()["closed_at"] is not None
    assert closed.json()["missing_timepoints_reason"] == "participant asleep, not woken"
    session.refresh_from_db()
    assert session.closed_by == alice and session.missing_timepoints_reason == "participant asleep, not woken"
    audit = AuditEvent.objects.filter(entity_type="dosing_session", entity_id=str(session.pk), action="update")
    assert audit.get(field="missing_timepoints").new_value == missing
    assert audit.get(field="closed_at").reason == "participant asleep, not woken"
    # A closed session takes no more vital signs (409), and is not closed twice.
    late = api(alice).post(
        f"/api/v1/dosing-sessions/{session.pk}/vital-signs/",
        {"timepoint_code": "T90", "measured_at": "2026-03-05T09:55", "heart_rate": 80},
        format="json",
    )
    assert late.status_code == 409, late.content
    assert api(alice).post(url, {}, format="json").status_code == 409
    assert VitalSign.objects.count() == 3


def test_a_complete_grid_closes_without_a_reason(session, alice):
    for code in MAPP_TIMEPOINTS:
        vitals(session, alice, code=code, heart_rate=80)
    with transaction.atomic():
        closed = services.dosing_session_close(session=session, by=alice)
    assert closed.closed_at is not None and closed.missing_timepoints_reason == ""


def test_a_vital_sign_is_corrected_with_a_reason_and_the_audit_keeps_the_earlier_value(
    session, alice, api, alert_tasks
):
    vital = vitals(session, alice, heart_rate=80)
    url = f"/api/v1/vital-signs/{vital.pk}/correct/"
    refused = api(alice).post(url, {"heart_rate": 118}, format="json")
    assert refused.status_code == 400 and "reason" in refused.json(), refused.content
    r = api(alice).post(url, {"heart_rate": 118, "reason": "misread the monitor"}, format="json")
    assert r.status_code == 200, r.content
    vital.refresh_from_db()
    assert vital.heart_rate == 118
    change = AuditEvent.objects.get(entity_type="vital_sign", entity_id=str(vital.pk), action="update")
    assert (change.field, change.old_value, change.new_value, change.reason) == (
        "heart_rate",
        80,
        118,
        "misread the monitor",
    )
    # The corrected value is over the threshold: its alert is raised once.
    assert list(SafetyAlert.objects.values_list("source_id", "rule_code")) == [(vital.pk, "HR_HIGH")]
    assert VitalSign.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"systolic_bp": 400}, "systolic_bp"),
        ({"systolic_bp": 80, "diastolic_bp": 90}, "diastolic_bp"),
        ({"temperature_c": "29.0"}, "temperature_c"),
        ({"timepoint_code": "T45"}, "timepoint_code"),
        ({"measured_at": "2026-03-06T09:00"}, "measured_at"),
        ({"measured_at": "soon"}, "measured_at"),
        ({"heart_rate": "fast"}, "heart_rate"),
        ({"heart_rate": None}, "systolic_bp"),  # no measure at all
    ],
)
def test_each_bad_vital_sign_answers_400_naming_it_and_records_nothing(session, alice, api, change, field):
    payload = {"timepoint_code": "T60", "measured_at": "2026-03-05T09:30", "heart_rate": 80, **change}
    r = api(alice).post(f"/api/v1/dosing-sessions/{session.pk}/vital-signs/", payload, format="json")
    assert r.status_code == 400, r.content
    assert field in r.json(), r.json()
    assert not VitalSign.objects.exists()
    assert not AuditEvent.objects.filter(entity_type="vital_sign").exists()


def test_a_timepoint_holds_one_row(session, alice, api):
    vitals(session, alice, code="T60", heart_rate=80)
    r = api(alice).post(
        f"/api/v1/dosing-sessions/{session.pk}/vital-signs/",
        {"timepoint_code": "T60", "measured_at": "2026-03-05T09:40", "heart_rate": 82},
        format="json",
    )
    assert r.status_code == 409, r.content
    assert VitalSign.objects.count() == 1


def test_a_rater_never_sees_dosing_sessions_of_a_study_that_hides_safety_data(session, alice, rater, api, bob):
    vital = vitals(session, alice, heart_rate=80)
    for user in (rater, bob):
        assert api(user).get(f"/api/v1/dosing-sessions/{session.pk}/").status_code == 404
        assert api(user).get("/api/v1/dosing-sessions/").json()["results"] == []
        r = api(user).post(f"/api/v1/vital-signs/{vital.pk}/correct/", {"heart_rate": 90, "reason": "x"}, format="json")
        assert r.status_code == 404
    vital.refresh_from_db()
    assert vital.heart_rate == 80


def test_a_rater_cannot_write(session, rater, alice, api):
    with pytest.raises(Exception) as info, transaction.atomic():
        services.vital_sign_record(session=session, by=rater, measured_at=NOW, heart_rate=80)
    assert getattr(info.value, "status_code", None) == 403
    assert not VitalSign.objects.exists()


def test_a_serious_adverse_event_joins_the_alert_list_and_is_escalated_once(
    participant, alice, investigator, api, alert_tasks, requested_tasks, clock
):
    event = record(alice, **mild_values(participant, seriousness=frozenset({"serious_hospitalisation"})))
    alert = SafetyAlert.objects.get()
    assert (alert.source, alert.source_id, alert.rule_code, alert.severity) == (
        "adverse_event",
        event.pk,
        "SERIOUS_AE",
        "high",
    )
    listed = api(investigator).get("/api/v1/safety-alerts/").json()["results"]
    assert [(a["id"], a["source"]) for a in listed] == [(alert.pk, "adverse_event")]
    # One mail: the event's own to the investigators; none for its alert.
    assert requested_tasks == [("safety.adverse_event_notify", [event.pk])]
    assert alert_tasks == []
    # Left unacknowledged past the questionnaire alerts' escalation delay, it is not escalated there...
    clock.shift(dt.timedelta(hours=2))
    assert assessment_services.safety_alerts_escalate_due() == []
    alert.refresh_from_db()
    assert alert.escalated_at is None
    # ... only by the event's own 24-hour clock, once.
    clock.shift(dt.timedelta(hours=23))
    assert services.adverse_events_escalate_due() == [event.pk]
    assert assessment_services.safety_alerts_escalate_due() == []
    assert [name for name, _ in requested_tasks] == [
        "safety.adverse_event_notify",
        "safety.adverse_event_escalation_notify",
    ]
    assert alert_tasks == []
    # A correction does not raise a second alert.
    with transaction.atomic():
        services.adverse_event_correct(event=event, reason="coded", by=alice, coded_term_text="Syncope")
    assert SafetyAlert.objects.count() == 1


def test_an_unacknowledged_vital_sign_alert_is_escalated_by_the_beat(session, alice, alert_tasks, clock):
    vital = vitals(session, alice, heart_rate=130)
    alert = SafetyAlert.objects.get(source_id=vital.pk)
    clock.shift(dt.timedelta(hours=2))
    assert assessment_services.safety_alerts_escalate_due() == [alert.pk]
    alert.refresh_from_db()
    assert alert.escalated_at is not None
    assert [name for name, _ in alert_tasks] == [
        "assessments.safety_alert_notify",
        "assessments.safety_alert_escalation_notify",
    ]


def test_the_list_costs_the_same_for_many_sessions(make_participant, alice, api):
    def add(n):
        for _ in range(n):
            p = make_participant("randomized")
            visit = Visit.objects.get(participant=p, code="DOSE1")
            with transaction.atomic():
                s = services.dosing_session_open(visit=visit, by=alice, started_at=NOW - dt.timedelta(hours=2))
            vitals(s, alice, heart_rate=80)

    add(2)
    with CaptureQueriesContext(connection) as few:
        assert len(api(alice).get("/api/v1/dosing-sessions/").json()["results"]) == 2
    add(4)
    with CaptureQueriesContext(connection) as many:
        assert len(api(alice).get("/api/v1/dosing-sessions/").json()["results"]) == 6
    assert len(many) == len(few)


def test_the_detail_costs_the_same_for_more_vital_signs(session, alice, api):
    vitals(session, alice, code="PRE", heart_rate=80)
    with CaptureQueriesContext(connection) as few:
        api(alice).get(f"/api/v1/dosing-sessions/{session.pk}/")
    for code in ("T30", "T60", "T90", "T120"):
        vitals(session, alice, code=code, heart_rate=130)
    with CaptureQueriesContext(connection) as many:
        body = api(alice).get(f"/api/v1/dosing-sessions/{session.pk}/").json()
    assert len(body["alerts"]) == 4
    assert len(many) == len(few)


def test_an_always_blinded_role_never_receives_the_doses(session, alice, personas, api):
    with transaction.atomic():
        services.dosing_doses_record(
            session=session, by=alice, initial_dose_mg="117.5", initial_dose_at=NOW - dt.timedelta(hours=2)
        )
    statistician = personas["statistician"]
    listed = api(statistician).get("/api/v1/dosing-sessions/").json()["results"]
    detail = api(statistician).get(f"/api/v1/dosing-sessions/{session.pk}/").json()
    for body in (listed[0], detail):
        assert body["doses_hidden"] is True
        assert (body["initial_dose_mg"], body["supplemental_dose_mg"], body["supplemental_dose_at"]) == (None,) * 3
        assert "117.5" not in json.dumps(body)
    mine = api(alice).get(f"/api/v1/dosing-sessions/{session.pk}/").json()
    assert mine["initial_dose_mg"] == 117.5 and mine["doses_hidden"] is False
    assert DosingSession.objects.get().initial_dose_mg == Decimal("117.50")


def test_a_vital_sign_alert_shows_on_the_home_pages_alert_list(session, alice, investigator, client, alert_tasks):
    vital = vitals(session, alice, heart_rate=131)
    alert = SafetyAlert.objects.get(source_id=vital.pk)
    client.force_login(investigator)
    page = client.get("/home/?list=alerts")
    assert page.status_code == 200
    body = page.content.decode()
    assert f'id="alert-{alert.pk}"' in body and "heart_rate 131" in body
    r = client.post(f"/alerts/{alert.pk}/acknowledge/", {"note": "rechecked: 96"})
    assert r.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by == investigator and alert.acknowledgement_note == "rechecked: 96"
