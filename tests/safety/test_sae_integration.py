"""End to end with real parts: a serious adverse event entered over the API reaches a real Celery worker process on
the ``safety`` queue through Redis, and its e-mail arrives at a real SMTP server on loopback. Left unreviewed for 24
hours (the clock moved), the escalation beat runs twice and the medical monitor gets exactly one message."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from safety import tasks
from safety.models import AdverseEvent
from tests.safety.conftest import sae_payload
from tests.support.processes import Worker, broker, own_redis, wait_for_worker_sessions_to_end, wait_until


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_sae_mails_the_investigators_through_a_real_worker_and_escalates_once(
    participant, alice, investigator, monitor, api, smtp_recorder, clock
):
    with own_redis() as url, broker(url):
        worker = Worker(url, smtp_recorder.port)
        try:
            worker.wait_ready()
            r = api(alice).post("/api/v1/adverse-events/", sae_payload(participant), format="json")
            assert r.status_code == 201, r.content
            event = AdverseEvent.objects.get(pk=r.json()["id"])
            wait_until(lambda: smtp_recorder.count() >= 1, 30, lambda: "the SAE e-mail\n" + worker.output()[-3000:])
            wait_until(lambda: AdverseEvent.objects.get().notified_at is not None, 10, "notified_at")
            (alert,) = smtp_recorder.messages
            assert alert.to == ["ivy@example.org"]
            assert "Serious adverse event" in alert.subject and participant.participant_id in alert.subject
            assert "chest pain" not in alert.body.lower() and "person@example.org" not in alert.body

            # Nobody reviews it. A day and a minute later the beat runs, twice (two beats, or a retried tick).
            with time_machine.travel(event.reporting_due_at + dt.timedelta(minutes=1), tick=True):
                assert tasks.adverse_events_escalate() == 1
                assert tasks.adverse_events_escalate() == 0
            wait_until(
                lambda: smtp_recorder.count() >= 2, 30, lambda: "the escalation e-mail\n" + worker.output()[-3000:]
            )
            wait_until(lambda: AdverseEvent.objects.get().escalation_notified_at is not None, 10, "the claim")
            # The escalation task delivered once more (a worker dying after the send) mails nothing.
            assert tasks.adverse_event_escalation_notify(event.pk) is False
        finally:
            worker.stop()
    wait_for_worker_sessions_to_end()
    assert smtp_recorder.count() == 2
    escalation = smtp_recorder.messages[1]
    assert escalation.to == [monitor] and "ESCALATED" in escalation.subject
    assert [m.to for m in smtp_recorder.messages].count([monitor]) == 1
    event.refresh_from_db()
    assert event.escalated_at is not None and event.reviewed_at is None
