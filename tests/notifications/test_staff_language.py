"""Mail to staff is written in the language each person chose for the staff pages (participants.StaffProfile):
safety alerts and overdue-questionnaire escalations, a Spanish-speaking and an English-speaking colleague side by
side. Participant messages keep the participant's language."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.db import transaction

from assessments import services as assessment_services
from assessments.models import SafetyAlert
from notifications import services
from notifications.models import Notification
from participants import services as participant_services
from scheduling.models import Visit
from tests.factories import staff
from tests.notifications.conftest import deliver_due
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 2, 20, 18, 0, tzinfo=dt.UTC)
HIGH_RISK = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}


def speaks(user, language):
    user.email = f"{user.username}@example.org"
    user.save(update_fields=["email"])
    with transaction.atomic():
        participant_services.staff_language_set(user=user, language=language, by=user)


def test_safety_alert_mail_reaches_each_investigator_in_their_language(make_participant, pdx, alice, api, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    ines = staff("ines", Role.INVESTIGATOR, pdx)
    ian = staff("ian", Role.INVESTIGATOR, pdx)
    speaks(ines, "es")
    speaks(ian, "en")
    alice.email = "alice@example.org"
    alice.save(update_fields=["email"])
    with time_machine.travel(T0, tick=False):
        p = make_participant("randomized")
        screen = Visit.objects.get(participant=p, code="SCREEN")
        response = api(alice).post(
            "/api/v1/responses/",
            {"participant_id": p.participant_id, "visit_id": screen.pk, "instrument": "CSSRS_SCREEN",
             "answers": HIGH_RISK},
            format="json",
        )  # fmt: skip
        assert response.status_code == 201, response.content
        alert = SafetyAlert.objects.get(participant=p, severity="high")
        mail.outbox.clear()
        assert assessment_services.safety_alert_notify(alert_id=alert.pk)
    by_reader = {tuple(m.to): m for m in mail.outbox}
    assert set(by_reader) == {(ines.email,), (ian.email,)}
    spanish, english = by_reader[(ines.email,)], by_reader[(ian.email,)]
    assert spanish.subject == f"[trialsite] Alerta de seguridad (high) del participante {p.participant_id}"
    assert f"Participante: {p.participant_id} en el centro PDX" in spanish.body
    assert "Revísela y confírmela:" in spanish.body and "Review" not in spanish.body
    assert english.subject == f"[trialsite] Safety alert (high) for participant {p.participant_id}"
    assert f"Participant: {p.participant_id} at site PDX" in english.body
    # Escalated, to coordinators too (alice never chose a language: the default, English).
    mail.outbox.clear()
    assert assessment_services.safety_alert_escalation_notify(alert_id=alert.pk)
    subjects = {to: m.subject for m in mail.outbox for to in m.to}
    assert subjects[ines.email].startswith("[trialsite] Alerta de seguridad ESCALADA")
    assert subjects[ian.email].startswith("[trialsite] ESCALATED safety alert")
    assert {m.subject for m in mail.outbox if alice.email in m.to} == {subjects[ian.email]}


def test_overdue_escalation_goes_to_each_coordinator_in_their_language(make_participant, pdx, alice, smtp):
    carla = staff("carla", Role.COORDINATOR, pdx)
    speaks(carla, "es")
    alice.email = "alice@example.org"  # alice never chose a language: the default, English
    alice.save(update_fields=["email"])
    with time_machine.travel(T0, tick=False):
        p = make_participant("randomized", contact={"full_name": "T", "email": "person@example.org"})
    baseline = Visit.objects.get(participant=p, code="BASELINE")
    # Three days after the target date (site time), the escalation is due.
    when = dt.datetime.combine(baseline.target_date + dt.timedelta(days=4), dt.time(18), tzinfo=dt.UTC)
    with time_machine.travel(when, tick=False):
        services.notifications_reconcile(participant_id=p.pk)
        rows = Notification.objects.filter(participant=p, template="coordinator_overdue", status="pending")
        assert {(r.recipient_user.username, r.language) for r in rows} == {("alice", "en"), ("carla", "es")}
        deliver_due()
    subjects = {m.to[0]: m.subject for m in smtp.messages if "overdue" in m.subject.lower() or "atrasad" in m.subject}
    assert subjects[carla.email].startswith("[trialsite] Evaluaciones atrasadas del participante")
    assert subjects[alice.email].startswith("[trialsite] Overdue assessments for participant")
