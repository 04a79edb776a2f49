"""Celery tasks: ids in, a service call. All ``notifications.*`` tasks route to the ``reminders`` queue (trialsite/beat.py).

Retries are not Celery retries: a failed attempt puts the row back to pending with a later ``due_at`` and the next
dispatch picks it up, so no task ever waits in the broker with an ETA (Redis re-delivers those after its visibility
timeout, and an outage would lose them).
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from notifications import services


@shared_task(name="notifications.dispatch_due", ignore_result=True)
def dispatch_due() -> int:
    """Beat, every minute: claim due rows and enqueue send tasks in batches. Safe to run twice at once. A full claim
    (a backlog) publishes the next dispatch behind half of its batches, so the backlog keeps flowing between ticks."""
    claims = services.notifications_claim_due()
    return services.enqueue_sends(claims, follow_up=len(claims) >= settings.NOTIFICATIONS_DISPATCH_BATCH)


@shared_task(name="notifications.send", ignore_result=True)
def send(notification_id: int, claim_token: str) -> str:
    return services.notification_send(notification_id=notification_id, claim_token=claim_token)


@shared_task(name="notifications.send_batch", ignore_result=True)
def send_batch(claims: list[list[int | str]]) -> dict[str, int]:
    """A batch of ``[id, claim_token]`` pairs from one dispatch, sent over one SMTP connection."""
    return services.notifications_send_batch([(int(pk), str(token)) for pk, token in claims])


@shared_task(name="notifications.reconcile_participant", ignore_result=True)
def reconcile_participant(participant_id: int) -> int:
    """Enqueued on commit by writers that change what a participant should be reminded of (by name; they never import
    notifications). Idempotent."""
    return services.notifications_reconcile(participant_id=participant_id).created


@shared_task(name="notifications.reconcile_all", ignore_result=True)
def reconcile_all() -> int:
    """Beat, every 5 minutes: the safety net for a hook that never reached the broker, for writes without a hook, and
    for time passing (a window that closed, a visit that began). Incremental and bounded by
    NOTIFICATIONS_RECONCILE_BUDGET_SECONDS, so it ends before the soft time limit at any size; what it did not reach,
    the next run does first."""
    return services.notifications_reconcile_changed().created
