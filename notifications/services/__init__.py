"""Every write to the outbox, by noun: planning (reconcile, cancel on withdrawal), dispatch (claim due rows, hand
them to workers) and delivery (one attempt per row, the sent mark, failure and backoff, a staff retry).

Delivery protocol of one row (see docs/operations.md, "Reminders: delivery guarantees"):

    pending --claim (dispatcher, conditional UPDATE, fresh token T)--> claimed(T)
    claimed(T) --send task begins (conditional on T)--> sending(T)
    sending(T) --channel's point of no return (conditional on T)--> sent
    sent --provider refused after all--> pending (backoff) | failed (attempts exhausted)
    claimed | sending, older than NOTIFICATIONS_CLAIM_TIMEOUT_SECONDS --dispatcher--> claimed(T') (re-claimed)

Every transition is a conditional UPDATE that checks the row count, so two dispatchers, a redelivered task and a
re-claimed row can never both send: only the attempt whose token is still on the row can mark it sent, and channels
mark it sent before the step that makes a message irrevocable.

The names below are re-exported so that ``from notifications import services`` keeps working for callers.
"""

from notifications.services.delivery import (
    NothingToSend,
    SentMark,
    notification_retry,
    notification_send,
    notifications_send_batch,
)
from notifications.services.dispatch import enqueue_sends, notifications_claim_due
from notifications.services.links import questionnaire_link_send
from notifications.services.planning import (
    ReconcileResult,
    SweepResult,
    notifications_cancel_for_participant,
    notifications_reconcile,
    notifications_reconcile_changed,
)

__all__ = [
    "NothingToSend",
    "ReconcileResult",
    "SentMark",
    "SweepResult",
    "enqueue_sends",
    "notification_retry",
    "notification_send",
    "notifications_cancel_for_participant",
    "notifications_claim_due",
    "notifications_reconcile",
    "notifications_reconcile_changed",
    "notifications_send_batch",
    "questionnaire_link_send",
]
