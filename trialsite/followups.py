"""Follow-up work that one context asks of another without importing it.

Writers never import notifications (architecture: arrows go one way). After a change that can alter which reminders
a participant should get, the writer asks for "reconcile this participant" by task name once its transaction commits;
the planner then recomputes the wanted reminders from the current state. ``robust=True``: if the broker is down the
request still succeeds (the periodic ``notifications.reconcile_all`` catches up), instead of a committed write
answering 500.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def _publish(name: str, args: list[object], priority: int | None) -> None:
    try:
        current_app.send_task(name, args=args, priority=priority)
    except Exception as exc:  # the broker is down or unreachable: never a 500 after a committed write
        # The row it is about waits in PostgreSQL; the periodic sweep for this kind of work publishes it later.
        logger.warning("task %s not published (%s); the periodic sweep will pick it up", name, type(exc).__name__)


def send_task_on_commit(name: str, args: list[object], *, priority: int | None = None) -> None:
    """Publish task ``name`` once the current transaction commits; a broker outage is logged, never raised. The only
    way request paths publish tasks: each such task has a periodic sweep (trialsite/beat.py) that finds its rows
    unprocessed in PostgreSQL and does the work, exactly once, when the task was never published. The queue comes
    from the task routes; ``priority`` (0-9) orders messages within it."""
    transaction.on_commit(lambda: _publish(name, args, priority), robust=True)


def reconcile_reminders_on_commit(participant_pk: int) -> None:
    send_task_on_commit("notifications.reconcile_participant", [participant_pk])
