"""Dispatch: claim the rows that are due and hand them to the send workers.

Claiming and publishing write no audit row, by design: they move the outbox's own rows through its delivery protocol
(see ``notifications.services``), every step is recorded on the row itself (status, claim token, claimed_at), and an
audit row per claim would add a row per message per beat tick without recording any decision.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from notifications.models import Notification

log = logging.getLogger(__name__)

N = Notification.Status

_CLAIM_DUE_SQL = """
UPDATE notifications_notification
SET status = 'claimed', claimed_at = %(now)s, claim_token = gen_random_uuid(), updated_at = %(now)s
WHERE id IN (
    SELECT id FROM notifications_notification
    WHERE status = 'pending' AND due_at <= %(now)s
    ORDER BY due_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AND status = 'pending'
RETURNING id, claim_token
"""

# A claim whose send task has not started within the timeout: its message may be lost (Redis restarted without
# persistence, or a killed worker holds it unacknowledged until the broker's visibility timeout). The row is handed out
# again with the SAME token, so whichever copy of the task runs first sends and the other finds the row taken. Minting a
# new token here would starve a backlog: every queued copy would be stale by the time a worker reached it.
_REPUBLISH_SQL = """
UPDATE notifications_notification
SET claimed_at = %(now)s, updated_at = %(now)s
WHERE id IN (
    SELECT id FROM notifications_notification
    WHERE status = 'claimed' AND claimed_at < %(stale)s
    ORDER BY claimed_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AND status = 'claimed'
RETURNING id, claim_token
"""

# An attempt that began sending and never finished: its worker died (or hangs). A new token takes the row from it, so
# even if that attempt is still alive it can no longer mark the row sent, and therefore never sends.
_RECLAIM_SQL = """
UPDATE notifications_notification
SET status = 'claimed', claimed_at = %(now)s, claim_token = gen_random_uuid(), updated_at = %(now)s
WHERE id IN (
    SELECT id FROM notifications_notification
    WHERE status = 'sending' AND claimed_at < %(stale)s
    ORDER BY claimed_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AND status = 'sending'
RETURNING id, claim_token
"""


def notifications_claim_due(*, now: dt.datetime | None = None, limit: int | None = None) -> list[tuple[int, str]]:
    """Claim due rows, each with a fresh token, and hand out again claims that a lost message or a dead worker left
    behind. Returns ``[(id, token)]`` to enqueue. Two dispatchers at once claim disjoint rows: SKIP LOCKED passes over rows the other is
    claiming, and the status condition is re-checked on the row's latest version."""
    now = now or timezone.now()
    limit = limit or settings.NOTIFICATIONS_DISPATCH_BATCH
    stale = now - dt.timedelta(seconds=settings.NOTIFICATIONS_CLAIM_TIMEOUT_SECONDS)
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            # Re-claiming a "sending" row is safe: a row still in "sending" never passed its channel's point of no
            # return (that step marks it sent), so nothing was delivered for it.
            cursor.execute(_REPUBLISH_SQL, {"now": now, "stale": stale, "limit": limit})
            claimed = cursor.fetchall()
            cursor.execute(_RECLAIM_SQL, {"now": now, "stale": stale, "limit": limit})
            claimed += cursor.fetchall()
            cursor.execute(_CLAIM_DUE_SQL, {"now": now, "limit": limit})
            claimed += cursor.fetchall()
        return [(pk, str(token)) for pk, token in claimed]
    # Other databases (the embedded SQLite demo): row by row; the conditional UPDATE's count decides.
    claimed = []
    for pk, token in Notification.objects.filter(status=N.CLAIMED, claimed_at__lt=stale).values_list(
        "pk", "claim_token"
    )[:limit]:
        if Notification.objects.filter(pk=pk, status=N.CLAIMED, claim_token=token).update(claimed_at=now):
            claimed.append((pk, str(token)))
    for status, extra in ((N.SENDING, {"claimed_at__lt": stale}), (N.PENDING, {"due_at__lte": now})):
        for (pk,) in (
            Notification.objects.filter(status=status, **extra).order_by("due_at", "id").values_list("pk")[:limit]
        ):
            token = uuid.uuid4()
            if Notification.objects.filter(pk=pk, status=status, **extra).update(
                status=N.CLAIMED, claimed_at=now, claim_token=token, updated_at=now
            ):
                claimed.append((pk, str(token)))
    return claimed


def enqueue_sends(claims: list[tuple[int, str]], *, follow_up: bool = False) -> int:
    """Hand claimed rows to workers (task ``notifications.send_batch`` by name, routed to the ``reminders`` queue). When the
    broker is unreachable the unpublished claims are released at once, so the next dispatch picks them up.

    ``follow_up`` (the dispatcher passes it when its claim was full, so more rows may be due): publish
    ``notifications.dispatch_due`` again halfway through the batches, so a backlog larger than one claim drains at the
    workers' pace instead of one claim per beat tick. The next claim then runs while the second half is being sent,
    and the queue never holds much more than two claims' worth: no queued claim outlives the claim timeout."""
    # Rows travel in small batches: one task (and one SMTP connection) per batch instead of per row, which is what
    # makes the pipeline keep up with a plain SMTP loop. Each row keeps its own claim token, so a batch redelivered
    # after a worker died re-sends only the rows that never reached their point of no return.
    size = max(1, settings.NOTIFICATIONS_SEND_BATCH)
    batches = [claims[start : start + size] for start in range(0, len(claims), size)]
    halfway = len(batches) // 2 if follow_up else -1
    published = 0
    try:
        with current_app.producer_or_acquire() as producer:
            for k, chunk in enumerate(batches):
                if k == halfway:
                    current_app.send_task("notifications.dispatch_due", producer=producer)
                batch = [[pk, token] for pk, token in chunk]
                current_app.send_task("notifications.send_batch", args=[batch], producer=producer)
                published += len(batch)
    except Exception:
        log.exception(
            "broker unreachable: %d claimed reminder(s) released to wait in the outbox", len(claims) - published
        )
        for pk, token in claims[published:]:
            Notification.objects.filter(pk=pk, status=N.CLAIMED, claim_token=token).update(
                status=N.PENDING, claim_token=None, claimed_at=None
            )
    return published
