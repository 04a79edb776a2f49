"""Celery tasks of the audit trail."""

from __future__ import annotations

from celery import shared_task

from audit.checkpoints import write_checkpoint


@shared_task(name="audit.checkpoint", ignore_result=True)
def checkpoint() -> int | None:
    """Beat, every 10 minutes: append a signed checkpoint of the chain's head outside the database (skipped when the
    head has not moved). Returns the head id checkpointed."""
    record = write_checkpoint()
    return None if record is None else int(record["head_id"])
