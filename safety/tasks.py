"""Celery tasks: ids in, a service call, retries here. Every ``safety.*`` task runs on the ``safety`` queue
(trialsite/beat.py), so a backlog of reminders or exports never delays an adverse-event alert."""

from __future__ import annotations

from celery import shared_task

from safety import services


@shared_task(
    name="safety.adverse_event_notify",
    autoretry_for=(OSError,),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=10,
)
def adverse_event_notify(event_id: int) -> bool:
    return services.adverse_event_notify(event_id=event_id)


@shared_task(
    name="safety.adverse_event_escalation_notify",
    autoretry_for=(OSError,),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=10,
)
def adverse_event_escalation_notify(event_id: int) -> bool:
    return services.adverse_event_escalation_notify(event_id=event_id)


@shared_task(name="safety.adverse_events_escalate")
def adverse_events_escalate() -> int:
    """Run by beat every few minutes (CELERY_BEAT_SCHEDULE entry "safety-adverse-events-escalate")."""
    return len(services.adverse_events_escalate_due())


@shared_task(name="safety.adverse_events_notify_pending")
def adverse_events_notify_pending() -> int:
    """The sweep, run by beat every minute (CELERY_BEAT_SCHEDULE entry "safety-adverse-events-notify-pending"): mails
    each serious event or AESI whose own task never reached the broker."""
    return len(services.adverse_events_notify_pending())
