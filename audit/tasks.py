"""Celery tasks of the audit trail."""

from __future__ import annotations

from celery import shared_task

from audit.checkpoints import write_checkpoint
from audit.sequencer import chain_pending as _chain_pending


@shared_task(name="audit.checkpoint", ignore_result=True)
def checkpoint() -> int | None:
    """Beat, every 10 minutes: append a signed checkpoint of the chain's head outside the database (skipped when the
    head has not moved). Returns the head id checkpointed."""
    record = write_checkpoint()
    return None if record is None else int(record["head_id"])


@shared_task(name="audit.chain_pending", ignore_result=True)
def chain_pending() -> int | None:
    """Beat, every minute: chain the audit rows still waiting for their place. Each writer chains its own rows after
    it commits; this catches the rows of a process that died between its commit and that step. Returns the rows
    chained (None when another sequencer was running)."""
    return _chain_pending()
