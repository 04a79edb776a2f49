"""The dosing-day screen: opening the session, the doses, a vital sign over a threshold marked in words with its
alert, a correction with a reason kept in the audit, closing refused without the missing-timepoints reason (the
timepoints named on the page, nothing lost) and closing with it; another site's staff and a rater of a study that
hides safety data get a 404; an always-blinded role sees no dose; the list of sessions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from assessments.models import SafetyAlert
from audit.models import AuditEvent
from safety import services
from safety.models import DosingSession, VitalSign
from scheduling.models import Visit
from tests.factories import staff
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

# Thursday 5 March 2026, 10:00 in Portland.
NOW = dt.datetime(2026, 3, 5, 18, 0, tzinfo=dt.UTC)
# The study's protocol (mapp-v1) declares these timepoints.
TIMEPOINTS = ["PRE", "T30", "T60", "T90", "T120", "T180", "T240", "T300", "T360", "DISCHARGE"]


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture(autouse=True)
def no_alert_mail(monkeypatch):
    monkeypatch.setattr("assessments.services.safety.send_task_on_commit", lambda name, args, priority=None: None)


@pytest.fixture
def visit(make_participant):
    return Visit.objects.get(participant=make_participant("randomized"), code="DOSE1")


@pytest.fixture
def session(visit, alice):
    with transaction.atomic():
        return services.dosing_session_open(
            visit=visit, by=alice, kit_identifier="KIT-0042", started_at=NOW - dt.timedelta(hours=3)
        )


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(visit, name="dashboard-dosing-day", *args) -> str:
    return reverse(name, args=[visit.pk, *args])


def test_a_coordinator_opens_the_session_with_who_is_present(visit, alice, pdx):
    therapist = staff("theo", Role.THERAPIST, pdx)
    client = client_of(alice)
    body = client.get(page(visit)).content.decode()
    assert "Open the session" in body and 'value="theo"' in body and not DosingSession.objects.exists()
    r = client.post(
        page(visit),
        {
            "kit_identifier": "KIT-7",
            "started_at": "2026-03-05T08:00",
            "present_staff": ["theo", "alice"],
            "present_others": "Dana Vale, monitor",
        },
    )
    assert r.status_code == 302 and r["Location"] == page(visit)
    session = DosingSession.objects.get(visit=visit)
    assert session.kit_identifier == "KIT-7"
    assert session.started_at == dt.datetime(2026, 3, 5, 16, 0, tzinfo=dt.UTC)  # 08:00 in Portland
    assert sorted(session.present_staff.values_list("username", flat=True)) == ["alice", "theo"]
    assert session.present_others == [{"name": "Dana Vale", "role": "monitor"}]
    assert therapist.username == "theo"
    body = client.get(page(visit)).content.decode()
    assert "KIT-7" in body and "Dana Vale (monitor)" in body and "10 timepoints missing" in body
    # A second opening is the service's 409 on the page, nothing saved.
    r = client.post(page(visit), {"kit_identifier": "KIT-8", "started_at": "", "present_others": ""})
    assert r.status_code == 409 and "already open" in r.content.decode()
    assert DosingSession.objects.count() == 1


def test_bad_input_on_opening_is_a_field_message_and_nothing_is_lost(visit, alice):
    r = client_of(alice).post(
        page(visit), {"kit_identifier": "KIT-9", "started_at": "2026-03-06T08:00", "present_others": "no role here"}
    )
    body = r.content.decode()
    assert r.status_code == 400
    assert "Give each person as: name, role." in body and 'value="KIT-9"' in body
    assert not DosingSession.objects.exists()
    r = client_of(alice).post(page(visit), {"kit_identifier": "KIT-9", "started_at": "2026-03-06T08:00"})
    assert r.status_code == 400 and "cannot be in the future" in r.content.decode()
    assert not DosingSession.objects.exists()


def test_doses_are_recorded_and_a_change_needs_a_reason(session, visit, alice):
    client = client_of(alice)
    r = client.post(
        page(visit, "dashboard-dosing-doses"),
        {"initial_dose_mg": "120", "initial_dose_at": "2026-03-05T07:30", "supplemental_dose_mg": "",
         "supplemental_dose_at": "", "reason": ""},
    )  # fmt: skip
    assert r.status_code == 302
    session.refresh_from_db()
    assert session.initial_dose_mg == Decimal("120.00")
    assert "120 mg" in client.get(page(visit)).content.decode()
    r = client.post(
        page(visit, "dashboard-dosing-doses"),
        {"initial_dose_mg": "100", "initial_dose_at": "2026-03-05T07:30", "supplemental_dose_mg": "",
         "supplemental_dose_at": "", "reason": ""},
    )  # fmt: skip
    assert r.status_code == 400 and 'id="id_reason_error"' in r.content.decode()
    session.refresh_from_db()
    assert session.initial_dose_mg == Decimal("120.00")


def test_a_vital_sign_over_threshold_is_marked_in_words_and_raises_an_alert(session, visit, alice):
    client = client_of(alice)
    r = client.post(
        page(visit, "dashboard-dosing-vital"),
        {"timepoint_code": "T60", "measured_at": "2026-03-05T09:00", "systolic_bp": "172", "diastolic_bp": "90",
         "heart_rate": "88", "temperature_c": "36.9", "note": "anxious"},
    )  # fmt: skip
    assert r.status_code == 302
    vital = VitalSign.objects.get(session=session)
    assert (vital.timepoint_code, vital.systolic_bp) == ("T60", 172)
    alert = SafetyAlert.objects.get(source="vital_sign", source_id=vital.pk)
    assert alert.rule_code == "SBP_HIGH"
    body = client.get(page(visit)).content.decode()
    assert "over threshold (&gt; 160)" in body
    assert escape(alert.message) in body and reverse("dashboard-home") in body
    assert "9 timepoints missing" in body and "Missing: no vital signs recorded" in body


def test_a_bad_vital_sign_is_a_field_message_and_the_values_stay(session, visit, alice):
    r = client_of(alice).post(
        page(visit, "dashboard-dosing-vital"),
        {"timepoint_code": "T60", "measured_at": "2026-03-05T09:00", "systolic_bp": "80", "diastolic_bp": "90",
         "heart_rate": "", "temperature_c": "", "note": "kept"},
    )  # fmt: skip
    body = r.content.decode()
    assert r.status_code == 400 and "must be below the systolic pressure" in body and 'value="kept"' in body
    assert not VitalSign.objects.exists()


def test_a_vital_sign_is_corrected_with_a_reason_kept_in_the_audit(session, visit, alice):
    with transaction.atomic():
        vital = services.vital_sign_record(
            session=session, by=alice, timepoint_code="PRE", measured_at=NOW - dt.timedelta(hours=3),
            systolic_bp=120, diastolic_bp=80, heart_rate=70,
        )  # fmt: skip
    client = client_of(alice)
    body = client.get(f"{page(visit)}?correct={vital.pk}").content.decode()
    assert "Correct the vital signs at PRE" in body
    values = {"timepoint_code": "PRE", "measured_at": "2026-03-05T07:00", "systolic_bp": "120",
              "diastolic_bp": "80", "heart_rate": "76", "temperature_c": "", "note": ""}  # fmt: skip
    url = page(visit, "dashboard-dosing-vital-correct", vital.pk)
    r = client.post(url, {**values, "reason": ""})
    assert r.status_code == 400 and 'id="id_reason_error"' in r.content.decode()
    vital.refresh_from_db()
    assert vital.heart_rate == 70
    r = client.post(url, {**values, "reason": "pulse misread"})
    assert r.status_code == 302
    vital.refresh_from_db()
    assert vital.heart_rate == 76
    [row] = AuditEvent.objects.filter(entity_type="vital_sign", entity_id=str(vital.pk), action="update")
    assert (row.field, row.old_value, row.new_value, row.reason) == ("heart_rate", 70, 76, "pulse misread")


def test_closing_is_refused_without_a_reason_naming_the_missing_timepoints_then_closes_with_one(session, visit, alice):
    client = client_of(alice)
    r = client.post(page(visit, "dashboard-dosing-close"), {"ended_at": "", "missing_timepoints_reason": ""})
    body = r.content.decode()
    assert r.status_code == 400
    assert f"no vital signs at {', '.join(TIMEPOINTS)}" in body and 'id="id_missing_timepoints_reason_error"' in body
    session.refresh_from_db()
    assert session.closed_at is None
    r = client.post(
        page(visit, "dashboard-dosing-close"), {"ended_at": "", "missing_timepoints_reason": "monitor failed"}
    )
    assert r.status_code == 302
    session.refresh_from_db()
    assert session.closed_at is not None and session.missing_timepoints_reason == "monitor failed"
    body = client.get(page(visit)).content.decode()
    assert "monitor failed" in body and "Record the vital signs" not in body and "Close the session" not in body


def test_a_rater_of_a_study_hiding_safety_and_another_sites_staff_get_404(session, visit, pdx, bob):
    rater = staff("rita", Role.RATER, pdx)
    assert visit.participant.study.hides_safety_from_raters
    for user in (rater, bob):
        client = client_of(user)
        assert client.get(page(visit)).status_code == 404
        r = client.post(page(visit, "dashboard-dosing-close"), {"missing_timepoints_reason": "x"})
        assert r.status_code == 404
        assert "KIT-0042" not in client.get(reverse("dashboard-dosing-sessions")).content.decode()
    session.refresh_from_db()
    assert session.closed_at is None


def test_a_statistician_sees_the_session_without_any_dose(session, visit, alice, pdx):
    with transaction.atomic():
        services.dosing_doses_record(
            session=session, by=alice, initial_dose_mg="117.5", initial_dose_at=NOW - dt.timedelta(hours=2)
        )
    statistician = staff("stan", Role.STATISTICIAN, pdx)
    body = client_of(statistician).get(page(visit)).content.decode()
    assert "KIT-0042" in body and "not shown to your role" in body
    assert "117.5" not in body and "Record the doses" not in body
    r = client_of(statistician).post(page(visit, "dashboard-dosing-doses"), {"initial_dose_mg": "1"})
    assert r.status_code == 403
    assert DosingSession.objects.get().initial_dose_mg == Decimal("117.50")
    assert "117.5" in client_of(alice).get(page(visit)).content.decode()


def test_the_participant_page_links_to_the_dosing_day(visit, alice):
    body = client_of(alice).get(reverse("dashboard-participant", args=[visit.participant.participant_id]))
    assert page(visit) in body.content.decode()
    assert not DosingSession.objects.exists()


def test_the_list_shows_the_sessions_newest_first_at_the_same_cost(make_participant, alice):
    def add(n):
        with transaction.atomic():
            for i in range(n):
                v = Visit.objects.get(participant=make_participant("randomized"), code="DOSE1")
                services.dosing_session_open(
                    visit=v, by=alice, kit_identifier=f"K{i}", started_at=NOW - dt.timedelta(hours=i + 1)
                )

    client = client_of(alice)
    add(2)
    client.get(reverse("dashboard-dosing-sessions"))
    with CaptureQueriesContext(connection) as few:
        body = client.get(reverse("dashboard-dosing-sessions")).content.decode()
    newest = DosingSession.objects.order_by("-started_at").first()
    assert page(newest.visit) in body
    add(6)
    with CaptureQueriesContext(connection) as more:
        r = client.get(reverse("dashboard-dosing-sessions"))
    assert r.status_code == 200 and len(more) == len(few)
    assert DosingSession.objects.count() == 8
