"""Re-keying the chain: every row's hash recomputed under the audit key, after verifying it under the old scheme.

Used once by migration 0004 (the chain before it was plain SHA-256) and by ``manage.py audit_rekey`` to move to a new
key. Only hash columns change, never a row's content; a final audit event records how many rows were re-keyed, the
old head hash and whether the old chain verified, so a chain that was already broken stays on record as such. The
append-only trigger is switched off for the re-key inside the same transaction, which needs the table's owner (the
migration role); the application role cannot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connections
from django.utils import timezone

from audit.chain import GENESIS, event_hash, hashed_fields

OldHash = Callable[[str, dict[str, Any]], str]
TRIGGER = "audit_event_append_only"


def rekey_chain(model: Any, old_hash: OldHash, new_key: bytes, *, using: str = "default", note: str) -> dict[str, Any]:
    """Re-hash every row of ``model`` (AuditEvent or its historical version) under ``new_key``; append one event
    recording it. Must run inside a transaction. Returns what the recorded event says."""
    connection = connections[using]
    table = connection.ops.quote_name(model._meta.db_table)
    rows = model.objects.using(using).order_by("id")
    if not rows.exists():
        return {"rows": 0}
    old_prev, new_prev = GENESIS, GENESIS
    old_state = "intact"
    changed = []
    count = 0
    for event in rows.iterator(chunk_size=2000):
        fields = hashed_fields(event)
        if old_state == "intact":
            if event.prev_hash != old_prev:
                old_state = f"broken at event {event.id}: prev_hash does not match the previous event"
            elif old_hash(old_prev, fields) != event.hash:
                old_state = f"broken at event {event.id}: content does not match its hash"
        old_prev = event.hash
        event.prev_hash = new_prev
        event.hash = new_prev = event_hash(new_key, new_prev, fields)
        changed.append(event)
        count += 1
    summary = {"rows": count, "old_head_hash": old_prev, "old_chain": old_state}
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            # Deferred foreign-key checks still pending in this transaction would make ALTER TABLE refuse.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {TRIGGER}")
        # Two steps so the unique hash column never holds an old and a new hash that happen to collide mid-way.
        cursor.execute(f"UPDATE {table} SET hash = 'rekey-' || id")  # noqa: S608
    model.objects.using(using).bulk_update(changed, ["prev_hash", "hash"], batch_size=1000)
    if postgres:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {TRIGGER}")
    record = model(
        occurred_at=timezone.now(),
        actor=None,
        actor_username="system",
        action="action",
        entity_type="audit_chain",
        entity_id="",
        participant_id="",
        site_code="",
        field="key",
        old_value=None,
        new_value=summary,
        reason=note,
        sensitivity="",
        prev_hash=new_prev,
    )
    record.hash = event_hash(new_key, new_prev, hashed_fields(record))
    record.save(using=using, force_insert=True)
    return summary
