"""Re-keying the chain: every row's hash recomputed under the audit key, after verifying it under the old scheme.

Used once by migration 0004 (the chain before it was plain SHA-256), once by migration 0006 (the chain before rows
were chained after commit, when hashes did not cover the row's id) and by ``manage.py audit_rekey`` to move to a new
key. Only the chain columns (and the rows' own MACs) change, never a row's content; a final audit event records how many rows were re-keyed, the
old head hash and whether the old chain verified, so a chain that was already broken stays on record as such. The
append-only trigger is switched off for the re-key inside the same transaction, which needs the table's owner (the
migration role); the application role cannot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import F
from django.utils import timezone

from audit.chain import GENESIS, content_mac, hashed_fields

# (previous row's hash, row) -> the row's hash under a scheme.
HashOf = Callable[[str, Any], str]
TRIGGER = "audit_event_append_only"


def rekey_chain(
    model: Any,
    old_hash: HashOf,
    new_hash: HashOf,
    *,
    using: str = "default",
    note: str,
    sequence: bool = True,
    mac_key: bytes | None = None,
) -> dict[str, Any]:
    """Re-hash every row of ``model`` (AuditEvent or its historical version) with ``new_hash``, in chain order (``seq``
    where rows have one, then id); append one event recording it. With ``sequence``, every row is given its place
    ``seq`` (1, 2, ...) in that order; with ``mac_key``, every row's own MAC is recomputed under it. Must run inside a
    transaction, with no row waiting for the sequencer under another key. Returns what the recorded event says."""
    connection = connections[using]
    table = connection.ops.quote_name(model._meta.db_table)
    rows = model.objects.using(using)
    rows = rows.order_by(F("seq").asc(nulls_last=True), "id") if sequence else rows.order_by("id")
    if not rows.exists():
        return {"rows": 0}
    old_prev, new_prev = GENESIS, GENESIS
    old_state = "intact"
    changed = []
    count = 0
    for event in rows.iterator(chunk_size=2000):
        if old_state == "intact":
            if event.prev_hash != old_prev:
                old_state = f"broken at event {event.id}: prev_hash does not match the previous event"
            elif old_hash(old_prev, event) != event.hash:
                old_state = f"broken at event {event.id}: content does not match its hash"
        old_prev = event.hash
        count += 1
        if sequence:
            event.seq = count
        if mac_key is not None:
            event.mac = content_mac(mac_key, hashed_fields(event))
        event.prev_hash = new_prev
        event.hash = new_prev = new_hash(new_prev, event)
        changed.append(event)
    summary = {"rows": count, "old_head_hash": old_prev, "old_chain": old_state}
    columns = ["prev_hash", "hash"] + (["seq"] if sequence else []) + (["mac"] if mac_key is not None else [])
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            # Deferred foreign-key checks still pending in this transaction would make ALTER TABLE refuse.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {TRIGGER}")
        # Two steps so the unique columns never hold an old and a new value that happen to collide mid-way.
        renumber = ", seq = -id" if sequence else ""
        cursor.execute(f"UPDATE {table} SET hash = 'rekey-' || id{renumber}")  # noqa: S608
    model.objects.using(using).bulk_update(changed, columns, batch_size=1000)
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
        hash="rekey-summary",
    )
    if sequence:
        record.seq = count + 1
    if mac_key is not None:
        record.mac = content_mac(mac_key, hashed_fields(record))
    # Inserted first (its hash may cover its id), then hashed, while the trigger is still off.
    record.save(using=using, force_insert=True)
    record.hash = new_hash(new_prev, record)
    model.objects.using(using).filter(pk=record.pk).update(hash=record.hash)
    if postgres:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {TRIGGER}")
    return summary
