"""Safety rules: C-SSRS high risk alerts at once and e-mails investigators (through a real SMTP server on loopback);
a C-SSRS moderate result and a PCL-5 rise from baseline raise a medium alert (listed, not mailed at once, escalated when
left unacknowledged like every alert); acknowledgement with a note; escalation of unacknowledged alerts."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.test import Client

from assessments import services, tasks
from assessments.models import Response, SafetyAlert
from audit.models import AuditEvent
from scheduling.models import Visit
from tests.factories import staff
from tests.support.processes import Worker, broker, broker_url, purged, wait_for_worker_sessions_to_end, wait_until
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

HIGH = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}
NONE = {"CSSRS_1": 0, "CSSRS_2": 0, "CSSRS_6": 0}
# Moderate: thoughts with a method (3), no intent (4, 5) and no behaviour; or past behaviour (6) that is not recent.
MODERATE_THOUGHTS = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 0, "CSSRS_5": 0, "CSSRS_6": 0}
MODERATE_PAST_BEHAVIOUR = {"CSSRS_1": 0, "CSSRS_2": 0, "CSSRS_6": 1, "CSSRS_6_RECENT": 0}
LOW = {"CSSRS_1": 1, "CSSRS_2": 0, "CSSRS_6": 0}


@pytest.fixture
def investigator(pdx):
    user = staff("ivy", Role.INVESTIGATOR, pdx)
    user.email = "ivy@example.org"
    user.save()
    return user


def enter(client, participant, visit, instrument, answers):
    return client.post(
        "/api/v1/responses/",
        {
            "participant_id": participant.participant_id,
            "visit_id": visit.pk,
            "instrument": instrument,
            "answers": answers,
        },
        format="json",
    )


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_high_risk_cssrs_alerts_at_once_and_a_worker_mails_investigators_over_smtp(
    participant, alice, investigator, api, smtp_recorder
):
    """End to end with real parts: the API request, the alert in the entry's own transaction, the high-priority task
    through Redis to a real Celery worker process on the ``safety`` queue, and the mail at a real SMTP server."""
    screen = Visit.objects.get(participant=participant, code="SCREEN")
    url = purged(broker_url(11))
    with broker(url):
        worker = Worker(url, smtp_recorder.port)
        try:
            worker.wait_ready()
            r = enter(api(alice), participant, screen, "CSSRS_SCREEN", HIGH)
            assert r.status_code == 201, r.content
            assert r.json()["flags"]["risk"] == "high"
            # The alert exists as soon as the entry is saved, whatever happens to the mail.
            alert = SafetyAlert.objects.get()
            assert (alert.severity, alert.rule_code, alert.response_id) == ("high", "cssrs_high_risk", r.json()["id"])
            wait_until(lambda: smtp_recorder.count() >= 1, 30, lambda: "the alert e-mail\n" + worker.output()[-3000:])
            wait_until(lambda: SafetyAlert.objects.get().notified_at is not None, 10, "notified_at")
        finally:
            worker.stop()
    wait_for_worker_sessions_to_end()
    assert smtp_recorder.count() == 1
    message = smtp_recorder.messages[0]
    assert message.to == ["ivy@example.org"]
    assert "Safety alert (high)" in message.subject + message.body
    assert participant.participant_id in message.subject + message.body
    assert "Test Person" not in message.body and "person@example.org" not in message.body
    # A redelivered task (a worker dying after the send) does not mail twice: the alert is claimed once.
    assert tasks.safety_alert_notify(alert.pk) is False


def test_no_alert_without_risk(participant, alice, api):
    screen = Visit.objects.get(participant=participant, code="SCREEN")
    assert enter(api(alice), participant, screen, "CSSRS_SCREEN", NONE).status_code == 201
    assert not SafetyAlert.objects.exists()


@pytest.fixture
def requested_tasks(monkeypatch):
    """The tasks the safety service asks for on commit, by name (the service's own seam to Celery)."""
    requested: list[tuple[str, list[object]]] = []
    monkeypatch.setattr(
        "assessments.services.safety.send_task_on_commit",
        lambda name, args, priority=None: requested.append((name, args)),
    )
    return requested


@pytest.mark.parametrize("answers", [MODERATE_THOUGHTS, MODERATE_PAST_BEHAVIOUR], ids=["thoughts", "past_behaviour"])
def test_moderate_cssrs_raises_a_medium_alert_listed_not_mailed(
    participant, alice, investigator, api, answers, requested_tasks
):
    screen = Visit.objects.get(participant=participant, code="SCREEN")
    r = enter(api(alice), participant, screen, "CSSRS_SCREEN", answers)
    assert r.status_code == 201, r.content
    assert r.json()["flags"]["risk"] == "moderate"
    alert = SafetyAlert.objects.get()
    assert (alert.severity, alert.rule_code, alert.response_id) == ("medium", "cssrs_moderate_risk", r.json()["id"])
    assert alert.details == {"flag": "risk", "value": "moderate"}
    assert alert.message == "CSSRS_SCREEN risk = moderate"
    event = AuditEvent.objects.get(entity_type="safety_alert", field="severity")
    assert (event.entity_id, event.new_value) == (str(alert.pk), "medium")
    # Medium alerts follow the existing rule: listed for the site's staff at once, no mail on entry (only high ones).
    assert services.safety.NOTIFY_TASK not in [name for name, _ in requested_tasks]
    assert len(mail.outbox) == 0 and alert.notified_at is None
    listed = api(investigator).get("/api/v1/safety-alerts/").json()["results"]
    assert [(a["id"], a["severity"]) for a in listed] == [(alert.pk, "medium")]
    # The dashboard's open-alert list shows it with its severity in words (not by colour alone).
    client = Client()
    client.force_login(investigator)
    home = client.get("/home/").content.decode()
    assert f'<li class="alert-item severity-medium" id="alert-{alert.pk}">' in home
    assert '<span class="severity">Medium</span>' in home
    assert SafetyAlert.objects.get(pk=alert.pk).acknowledged_at is None


@pytest.mark.parametrize(
    "answers, risk, expected",
    [(HIGH, "high", [("high", "cssrs_high_risk")]), (LOW, "low", []), (NONE, "none", [])],
)
def test_only_moderate_and_high_cssrs_raise_alerts_high_stays_high(
    participant, alice, api, answers, risk, expected, requested_tasks
):
    screen = Visit.objects.get(participant=participant, code="SCREEN")
    r = enter(api(alice), participant, screen, "CSSRS_SCREEN", answers)
    assert r.json()["flags"]["risk"] == risk
    assert [(a.severity, a.rule_code) for a in SafetyAlert.objects.all()] == expected
    mailed = [args for name, args in requested_tasks if name == services.safety.NOTIFY_TASK]
    assert mailed == [[a.pk] for a in SafetyAlert.objects.filter(severity="high")]  # high: mailed at once


def test_an_unacknowledged_medium_alert_escalates_like_any_alert(
    participant, alice, investigator, api, settings, requested_tasks
):
    settings.SAFETY_ALERT_ESCALATE_AFTER_MINUTES = 30
    screen = Visit.objects.get(participant=participant, code="SCREEN")
    start = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        enter(api(alice), participant, screen, "CSSRS_SCREEN", MODERATE_THOUGHTS)
    alert = SafetyAlert.objects.get()
    with time_machine.travel(start + dt.timedelta(minutes=29), tick=False):
        assert services.safety_alerts_escalate_due() == []
    with time_machine.travel(start + dt.timedelta(minutes=30), tick=False):
        assert services.safety_alerts_escalate_due() == [alert.pk]
    alert.refresh_from_db()
    assert alert.escalated_at == start + dt.timedelta(minutes=30)
    assert (services.safety.ESCALATION_TASK, [alert.pk]) in requested_tasks
    assert AuditEvent.objects.filter(entity_type="safety_alert", field="escalated_at").count() == 1
    assert services.safety_alert_escalation_notify(alert_id=alert.pk) is True
    assert "ESCALATED safety alert (medium)" in mail.outbox[0].subject


def test_pcl5_rise_of_ten_from_baseline_raises_a_medium_alert(participant, baseline, alice, api):
    endpoint = Visit.objects.get(participant=participant, code="ENDPOINT")
    follow_up = Visit.objects.get(participant=participant, code="FU")
    base = {f"PCL5_{i:02d}": 1 for i in range(1, 21)}  # total 20
    assert enter(api(alice), participant, baseline, "PCL5", base).status_code == 201
    nine_more = base | {f"PCL5_{i:02d}": 2 for i in range(1, 10)}  # total 29: +9, no alert
    assert enter(api(alice), participant, endpoint, "PCL5", nine_more).status_code == 201
    assert not SafetyAlert.objects.exists()
    ten_more = base | {f"PCL5_{i:02d}": 2 for i in range(1, 11)}  # total 30: +10
    r = enter(api(alice), participant, follow_up, "PCL5", ten_more)
    alert = SafetyAlert.objects.get()
    assert (alert.severity, alert.rule_code, alert.response_id) == ("medium", "pcl5_rise_from_baseline", r.json()["id"])
    assert alert.details == {"scale": "total", "baseline": 20.0, "current": 30.0, "gte": 10}
    assert len(mail.outbox) == 0  # medium alerts are listed, not mailed


def test_investigator_acknowledges_with_a_note(participant, alice, investigator, personas, api):
    screen = Visit.objects.get(participant=participant, code="SCREEN")
    enter(api(alice), participant, screen, "CSSRS_SCREEN", HIGH)
    alert = SafetyAlert.objects.get()
    listed = api(investigator).get("/api/v1/safety-alerts/").json()
    assert [a["id"] for a in listed["results"]] == [alert.pk]
    assert listed["results"][0]["participant_id"] == participant.participant_id
    assert api(personas["rater"]).get("/api/v1/safety-alerts/").json()["results"] == []
    url = f"/api/v1/safety-alerts/{alert.pk}/acknowledge/"
    assert api(alice).post(url, {"note": "seen"}, format="json").status_code == 403  # coordinators cannot
    assert api(investigator).post(url, {"note": ""}, format="json").status_code == 400
    r = api(investigator).post(url, {"note": "Called the participant; safety plan in place."}, format="json")
    assert r.status_code == 200
    assert r.json()["acknowledged_by"] == "ivy"
    alert.refresh_from_db()
    assert alert.acknowledgement_note == "Called the participant; safety plan in place."
    event = AuditEvent.objects.get(entity_type="safety_alert", field="acknowledgement_note")
    assert event.new_value == alert.acknowledgement_note and event.actor_username == "ivy"
    assert api(investigator).post(url, {"note": "again"}, format="json").status_code == 409


def test_unacknowledged_alert_escalates_after_the_configured_time(participant, alice, investigator, api, settings):
    settings.SAFETY_ALERT_ESCALATE_AFTER_MINUTES = 30
    screen = Visit.objects.get(participant=participant, code="SCREEN")
    start = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        enter(api(alice), participant, screen, "CSSRS_SCREEN", HIGH)
        second = Visit.objects.get(participant=participant, code="DOSE1")
        enter(api(alice), participant, second, "CSSRS_SCREEN", HIGH)
    first, acked = SafetyAlert.objects.order_by("id")
    services.safety_alert_acknowledge(alert=acked, note="handled", by=investigator)
    # The escalation e-mail is enqueued on commit (not run inside this test's transaction); its body runs below.
    with time_machine.travel(start + dt.timedelta(minutes=29, seconds=59), tick=False):
        assert services.safety_alerts_escalate_due() == []
    with time_machine.travel(start + dt.timedelta(minutes=30), tick=False):
        assert services.safety_alerts_escalate_due() == [first.pk]
        assert services.safety_alerts_escalate_due() == []  # escalated once
    first.refresh_from_db()
    assert first.escalated_at == start + dt.timedelta(minutes=30)
    assert AuditEvent.objects.filter(entity_type="safety_alert", field="escalated_at").count() == 1
    mail.outbox.clear()
    assert services.safety_alert_escalation_notify(alert_id=first.pk) is True
    assert "ESCALATED" in mail.outbox[0].subject
    assert set(mail.outbox[0].to) >= {"ivy@example.org"}
    assert not Response.objects.filter(pk=acked.response_id, safety_alerts__escalated_at__isnull=False).exists()
