"""A high alert reaches someone, or says that it did not: a site with no investigator to mail escalates at once to its
coordinators; with nobody to mail the alert says so on the dashboard; /readyz counts both. The sweep mails alerts
whose task never reached the broker, exactly once."""

from __future__ import annotations

import logging

import pytest
from django.core import mail
from django.test import Client

from assessments import selectors, services
from assessments.models import SafetyAlert
from scheduling.models import Visit
from tests.factories import staff
from trialsite import health
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

HIGH = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}
NO_INVESTIGATOR = "No investigator notified: no investigator at this site has an e-mail address; its coordinators were."
NOBODY = "Nobody notified: no investigator or coordinator at this site has an e-mail address."


def raise_high(api, user, participant, code="SCREEN") -> SafetyAlert:
    visit = Visit.objects.get(participant=participant, code=code)
    r = api(user).post(
        "/api/v1/responses/",
        {"participant_id": participant.participant_id, "visit_id": visit.pk, "instrument": "CSSRS_SCREEN",
         "answers": HIGH},
        format="json",
    )  # fmt: skip
    assert r.status_code == 201, r.content
    # In this (non-committing) test the mail task is never published: the row waits, as after a broker outage.
    return SafetyAlert.objects.get(response_id=r.json()["id"])


def with_email(user, address):
    user.email = address
    user.save()
    return user


def alerts_page(client, user) -> str:
    client.force_login(user)
    response = client.get("/home/?list=alerts")
    assert response.status_code == 200
    return response.content.decode()


def test_no_investigator_to_mail_escalates_to_the_coordinators_and_says_so(participant, alice, pdx, api, caplog):
    staff("ivy", Role.INVESTIGATOR, pdx)  # an investigator without an e-mail address
    with_email(alice, "alice@example.org")
    alert = raise_high(api, alice, participant)
    with caplog.at_level(logging.ERROR, logger="assessments.services.safety"):
        assert services.safety_alert_notify(alert_id=alert.pk) is True
    # The coordinators got the alert, told why it came to them.
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@example.org"]
    assert "Safety alert (high)" in mail.outbox[0].subject
    assert "No investigator at this site has an e-mail address" in mail.outbox[0].body
    alert.refresh_from_db()
    assert alert.notified_at is not None and alert.notified_to == SafetyAlert.NotifiedTo.COORDINATORS
    assert any("no investigator at site PDX" in r.getMessage() for r in caplog.records)
    # The dashboard's alert list and /readyz say no investigator was notified; readiness is unaffected.
    assert NO_INVESTIGATOR in alerts_page(Client(), alice)
    ready = Client().get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "database": "ok",
        "broker": "ok",
        "safety_alerts": {"no_investigator_notified": 1, "nobody_notified": 0},
    }
    # Once an investigator acknowledges it, it is no longer counted or flagged.
    ivy = staff("ivy", Role.INVESTIGATOR, pdx)
    services.safety_alert_acknowledge(alert=alert, note="called the participant", by=ivy)
    assert selectors.safety_alerts_unnotified_counts() == {"no_investigator_notified": 0, "nobody_notified": 0}
    assert NO_INVESTIGATOR not in alerts_page(Client(), alice)


def test_with_nobody_to_mail_the_alert_shows_on_the_dashboard_and_in_readyz(participant, alice, pdx, api):
    staff("ivy", Role.INVESTIGATOR, pdx)
    alert = raise_high(api, alice, participant)  # nobody at PDX has an e-mail address
    assert services.safety_alert_notify(alert_id=alert.pk) is False
    assert mail.outbox == []
    alert.refresh_from_db()
    assert alert.notified_at is not None and alert.notified_to == SafetyAlert.NotifiedTo.NOBODY
    assert NOBODY in alerts_page(Client(), alice)
    ready = Client().get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["safety_alerts"] == {"no_investigator_notified": 1, "nobody_notified": 1}
    # Claimed once: a second run (a redelivered task, the sweep) sends nothing and changes nothing.
    assert services.safety_alert_notify(alert_id=alert.pk) is False
    assert services.safety_alerts_notify_pending() == []


def test_an_investigator_with_an_address_is_mailed_and_nothing_is_flagged(participant, alice, pdx, api):
    with_email(staff("ivy", Role.INVESTIGATOR, pdx), "ivy@example.org")
    with_email(alice, "alice@example.org")
    alert = raise_high(api, alice, participant)
    assert services.safety_alert_notify(alert_id=alert.pk) is True
    assert [m.to for m in mail.outbox] == [["ivy@example.org"]]
    assert "No investigator" not in mail.outbox[0].body
    alert.refresh_from_db()
    assert alert.notified_to == SafetyAlert.NotifiedTo.INVESTIGATORS
    page = alerts_page(Client(), alice)
    assert alert.message in page and NO_INVESTIGATOR not in page and NOBODY not in page
    assert Client().get("/readyz").json()["safety_alerts"] == {"no_investigator_notified": 0, "nobody_notified": 0}


def test_the_sweep_mails_each_waiting_high_alert_exactly_once(participant, alice, pdx, api):
    with_email(staff("ivy", Role.INVESTIGATOR, pdx), "ivy@example.org")
    waiting = raise_high(api, alice, participant, "SCREEN")
    escalated = raise_high(api, alice, participant, "BASELINE")
    SafetyAlert.objects.filter(pk=escalated.pk).update(escalated_at=escalated.created_at)  # its escalation mailed all
    assert services.safety_alerts_notify_pending() == [waiting.pk]
    assert services.safety_alerts_notify_pending() == []
    assert services.safety_alert_notify(alert_id=waiting.pk) is False  # the task, arriving late, sends nothing
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ivy@example.org"]
    assert participant.participant_id in mail.outbox[0].subject
    assert SafetyAlert.objects.get(pk=escalated.pk).notified_at is None


def test_a_failing_readyz_detail_is_left_out_and_logged_never_shown(caplog):
    def broken() -> object:
        raise RuntimeError("connection to 10.1.2.3 refused")

    with caplog.at_level(logging.ERROR, logger="trialsite.health"):
        assert health._details({"safety_alerts": broken, "other": lambda: 3}) == {"other": 3}
    assert any("10.1.2.3" in r.getMessage() for r in caplog.records)  # in the log, for operators
