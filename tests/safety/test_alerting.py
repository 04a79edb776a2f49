"""A serious event or an AESI mails the site's investigators once; left unreviewed for the reporting clock (24 h) it
escalates to the study's medical monitor exactly once, however often the beat or the mail task runs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from audit.models import AuditEvent
from safety import services, tasks
from safety.models import AdverseEvent
from tests.factories import staff
from tests.safety.conftest import mild_values, record
from trialsite.roles import Role

pytestmark = pytest.mark.django_db


def test_an_aesi_that_is_not_serious_also_alerts(participant, alice, investigator, requested_tasks):
    event = record(alice, **mild_values(participant, aesi_categories=["positive_psychoactive"]))
    assert not event.serious and event.reporting_due_at is not None
    assert requested_tasks == [("safety.adverse_event_notify", [event.pk])]
    assert services.adverse_event_notify(event_id=event.pk) is True
    (message,) = mail.outbox
    assert message.to == ["ivy@example.org"]
    assert "Adverse event of special interest" in message.subject
    assert "Euphoria or elevated mood" in message.body and participant.participant_id in message.subject
    # No free text and no contact detail leaves by e-mail.
    assert "headache" not in message.body and "person@example.org" not in message.body
    # A second delivery of the task (a redelivered message) sends nothing.
    assert tasks.adverse_event_notify(event.pk) is False and len(mail.outbox) == 1


def test_a_mild_event_alerts_nobody(participant, alice, investigator, requested_tasks):
    event = record(alice, **mild_values(participant))
    assert requested_tasks == [] and event.reporting_due_at is None
    assert services.adverse_events_escalate_due(event.recorded_at + dt.timedelta(days=30)) == []


def test_a_failed_send_releases_the_claim_so_the_retry_sends(participant, alice, investigator, monkeypatch):
    event = record(alice, **mild_values(participant, seriousness=frozenset({"serious_disability"})))

    def refuse(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr("trialsite.staff_mail.send_mail", refuse)
    with pytest.raises(OSError):
        services.adverse_event_notify(event_id=event.pk)
    assert AdverseEvent.objects.get().notified_at is None
    monkeypatch.undo()
    assert services.adverse_event_notify(event_id=event.pk) is True and len(mail.outbox) == 1


def test_unreviewed_for_24_hours_it_escalates_to_the_medical_monitor_exactly_once(
    participant, alice, investigator, monitor, requested_tasks, clock
):
    event = record(alice, **mild_values(participant, seriousness=frozenset({"serious_life_threatening"})))
    due = event.reporting_due_at
    assert due == event.recorded_at + dt.timedelta(hours=24)
    clock.move_to(due - dt.timedelta(minutes=1))
    assert tasks.adverse_events_escalate() == 0
    clock.move_to(due + dt.timedelta(minutes=1))
    assert tasks.adverse_events_escalate() == 1
    assert tasks.adverse_events_escalate() == 0  # the second beat finds it claimed
    assert requested_tasks[-1:] == [("safety.adverse_event_escalation_notify", [event.pk])]
    assert len(requested_tasks) == 2  # the alert, then exactly one escalation
    # The mail task, delivered twice, mails once.
    assert services.adverse_event_escalation_notify(event_id=event.pk) is True
    assert services.adverse_event_escalation_notify(event_id=event.pk) is False
    (message,) = mail.outbox
    assert message.to == [monitor] and "ESCALATED" in message.subject
    assert "life threatening" in message.body
    trail = AuditEvent.objects.get(entity_type="adverse_event", field="escalated_at")
    assert trail.actor_username == "system" and "not reviewed within 1 day" in trail.reason


def test_a_review_between_the_escalation_and_its_mail_stops_the_mail(
    participant, alice, investigator, monitor, requested_tasks
):
    event = record(alice, **mild_values(participant, seriousness=frozenset({"serious_death"}), outcome="fatal"))
    assert services.adverse_events_escalate_due(event.reporting_due_at) == [event.pk]
    services.adverse_event_review(event=event, causality_drug="unlikely", causality_therapy="unlikely", by=investigator)
    assert services.adverse_event_escalation_notify(event_id=event.pk) is False
    assert mail.outbox == []


def test_without_a_medical_monitor_the_escalation_goes_to_the_sites_investigators(
    participant, alice, investigator, pdx, requested_tasks
):
    admin = staff("adam", Role.ADMIN, pdx)
    admin.email = "adam@example.org"
    admin.save()
    event = record(alice, **mild_values(participant, seriousness=frozenset({"serious_hospitalisation"})))
    services.adverse_events_escalate_due(event.reporting_due_at)
    assert services.adverse_event_escalation_notify(event_id=event.pk) is True
    (message,) = mail.outbox
    assert sorted(message.to) == ["adam@example.org", "ivy@example.org"]


def test_safety_tasks_run_on_the_safety_queue():
    from trialsite.celery import app

    for name in ("safety.adverse_event_notify", "safety.adverse_event_escalation_notify"):
        assert app.amqp.router.route({}, name)["queue"].name == "safety"
    entry = app.conf.beat_schedule["safety-adverse-events-escalate"]
    assert (entry["task"], entry["options"]["queue"]) == ("safety.adverse_events_escalate", "safety")


def test_each_investigator_reads_the_alert_in_their_language(participant, alice, investigator, pdx, requested_tasks):
    from django.db import transaction

    from participants import services as participant_services

    other = staff("ines", Role.INVESTIGATOR, pdx)
    other.email = "ines@example.org"
    other.save()
    with transaction.atomic():
        participant_services.staff_language_set(user=other, language="es", by=other)
    event = record(alice, **mild_values(participant, seriousness=frozenset({"serious_hospitalisation"})))
    assert services.adverse_event_notify(event_id=event.pk) is True
    by_reader = {tuple(m.to): m for m in mail.outbox}
    assert "Acontecimiento adverso grave" in by_reader[("ines@example.org",)].subject
    assert "Criterios de gravedad: hospitalisation" in by_reader[("ines@example.org",)].body
    assert "Serious adverse event" in by_reader[("ivy@example.org",)].subject


def test_the_sweep_mails_an_event_whose_task_never_reached_the_broker_exactly_once(
    participant, alice, investigator, requested_tasks
):
    # The task was asked for after commit; say the broker was down and it never arrived.
    waiting = record(alice, **mild_values(participant, seriousness=frozenset({"serious_disability"})))
    mild = record(alice, **mild_values(participant))
    assert requested_tasks == [("safety.adverse_event_notify", [waiting.pk])]
    assert services.adverse_events_notify_pending() == [waiting.pk]
    assert services.adverse_events_notify_pending() == []
    assert tasks.adverse_event_notify(waiting.pk) is False  # the task, arriving late, sends nothing
    (message,) = mail.outbox
    assert message.to == ["ivy@example.org"] and participant.participant_id in message.subject
    assert AdverseEvent.objects.get(pk=waiting.pk).notified_at is not None
    assert AdverseEvent.objects.get(pk=mild.pk).notified_at is None
