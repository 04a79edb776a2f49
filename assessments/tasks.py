"""Celery tasks: ids in, a service call, retries here. Safety mail runs on its own queue (``safety``) so a backlog of
reminders or exports never delays it."""

from __future__ import annotations

from celery import shared_task

from assessments import services


@shared_task(
    name="assessments.safety_alert_notify",
    autoretry_for=(OSError,),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=10,
)
def safety_alert_notify(alert_id: int) -> bool:
    return services.safety_alert_notify(alert_id=alert_id)


@shared_task(
    name="assessments.safety_alert_escalation_notify",
    autoretry_for=(OSError,),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=10,
)
def safety_alert_escalation_notify_task(alert_id: int) -> bool:
    return services.safety_alert_escalation_notify(alert_id=alert_id)


@shared_task(name="assessments.safety_alerts_escalate")
def safety_alerts_escalate() -> int:
    """Run by beat every few minutes (CELERY_BEAT_SCHEDULE entry "safety-alerts-escalate")."""
    return len(services.safety_alerts_escalate_due())


@shared_task(name="assessments.safety_alerts_notify_pending")
def safety_alerts_notify_pending() -> int:
    """The sweep, run by beat every minute (CELERY_BEAT_SCHEDULE entry "safety-alerts-notify-pending"): mails each high
    alert whose own task never reached the broker. Exactly once per alert, with or without that task."""
    return len(services.safety_alerts_notify_pending())
