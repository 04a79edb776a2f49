"""The sequencer: gives committed audit rows their place in the keyed chain, after their transaction has committed.

Why after commit. A chain needs one total order. Taking a lock on the chain's head inside every writing transaction
(as this trail once did, with one advisory lock) makes every audited write in the deployment wait for the previous one
to commit, and the lock, taken in the middle of a transaction after row locks, inverts lock order: a transaction
holding the chain lock waits at COMMIT on a foreign-key check against a row another transaction has locked, while that
one waits for the chain lock, and PostgreSQL aborts one of them ("deadlock detected"). A chain per study would still
serialise every site of a study and would have to be locked before any row lock in every service.

So a writing service takes no audit lock at all: it INSERTs its rows in one statement with a keyed MAC of each row's
content (audit.chain.content_mac) and ``seq``/``prev_hash``/``hash`` left NULL. After its commit, it calls
``chain_pending``, which in a short transaction of its own:
- takes the sequencer's advisory lock with ``pg_try_advisory_xact_lock``: one sequencer at a time, and a writer never
  waits for it (if another process is sequencing, that one chains this writer's rows too, see below);
- reads the chain's head and the committed rows without a place (a partial index holds only those), in id order;
- computes each row's chain hash in Python and gives every row its ``seq``, ``prev_hash`` and ``hash`` in one UPDATE,
  the only UPDATE the table's trigger allows (once per row, nothing else changed).
The sequencer holds no row lock of any domain table and waits for nothing but its own statements, so it cannot take
part in a deadlock; writers share no lock through the audit trail, so writers at different sites or studies never wait
for each other on it.

No row is left behind: after its transaction commits (which releases the lock), a sequencer looks again for rows
without a place and goes round once more if it finds any. A writer whose try-lock failed had committed before it tried,
so the lock holder's look after releasing sees that writer's rows. The beat task ``audit.chain_pending`` (every
minute) and ``audit_checkpoint`` chain whatever a killed process left; ``audit_verify`` chains first, then verifies.

What a row without a place is protected by: the append-only triggers (no UPDATE of its content, no DELETE), and its own
MAC, which ``audit_verify`` checks for every row (chained or not), so its content cannot be changed without the key. A
superuser who deletes a committed row in the moment before it is chained is not caught by the chain; that moment is
milliseconds long, and the same superuser could cut the chain's tail until the next signed checkpoint anyway
(docs/security.md, "The audit trail").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import DatabaseError, connections, transaction

from audit.chain import GENESIS, link_hash
from audit.keys import audit_key

log = logging.getLogger(__name__)

# Arbitrary constant naming the advisory lock only the sequencer takes (never a writing service).
SEQUENCER_LOCK_KEY = 748_215_002
BATCH = 1000


def _model() -> Any:
    from audit.models import AuditEvent

    return AuditEvent


def _try_lock(using: str) -> bool:
    connection = connections[using]
    if connection.vendor != "postgresql":
        # SQLite (the demo) runs one writing transaction at a time anyway.
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEQUENCER_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def _chain_batch(model: Any, key: bytes, using: str, batch_size: int) -> int:
    """Chain up to ``batch_size`` rows waiting for their place, oldest id first. Runs under the sequencer's lock."""
    rows = model.objects.using(using)
    head = rows.filter(seq__isnull=False).order_by("-seq").values_list("seq", "hash").first()
    seq, prev = head if head is not None else (0, GENESIS)
    pending = list(rows.filter(seq__isnull=True).order_by("id")[:batch_size])
    if not pending:
        return 0
    for event in pending:
        seq += 1
        event.seq, event.prev_hash = seq, prev
        event.hash = prev = link_hash(key, prev, event)
    connection = connections[using]
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS t SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash "  # noqa: S608
                "FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[], %s::varchar[]) AS v(id, seq, prev_hash, hash) "
                "WHERE t.id = v.id AND t.seq IS NULL",
                [
                    [e.id for e in pending],
                    [e.seq for e in pending],
                    [e.prev_hash for e in pending],
                    [e.hash for e in pending],
                ],
            )
            if cursor.rowcount != len(pending):
                raise DatabaseError("audit sequencer: a row changed under the sequencer's lock")
    else:
        model.objects.using(using).bulk_update(pending, ["seq", "prev_hash", "hash"])
    return len(pending)


def chain_pending(
    *, key: bytes | None = None, model: Any = None, using: str = "default", batch_size: int = BATCH
) -> int | None:
    """Give every committed row without a place its place in the chain. Returns the number of rows chained, or None
    when another process held the sequencer's lock (it chains them). Safe to call at any time, from any process."""
    model = model if model is not None else _model()
    key = key if key is not None else audit_key()
    total = 0
    for _round in range(100):
        with transaction.atomic(using=using):
            if not _try_lock(using):
                return total or None
            while True:
                chained = _chain_batch(model, key, using, batch_size)
                total += chained
                if chained < batch_size:
                    break
        # The lock is released (unless an outer transaction holds it): rows committed while it was held, by writers
        # whose try-lock failed, are visible now.
        if not model.objects.using(using).filter(seq__isnull=True).exists():
            break
    return total


@dataclass
class _Pending:
    """Shared by the callbacks one transaction registers: the first to run chains, the others have nothing to do."""

    done: bool = False


def _after_commit(token: _Pending, using: str) -> None:
    if token.done:
        return
    token.done = True
    try:
        chain_pending(using=using)
    except DatabaseError:
        # The write has committed; its rows wait for the next sequencer (another writer, or the beat task).
        log.exception("audit sequencer failed after commit; rows will be chained by the next run")


def chain_pending_on_commit(using: str = "default") -> None:
    """Chain this transaction's audit rows once it commits (nothing if it rolls back). Called by audit_record."""
    connection = transaction.get_connection(using)
    token: _Pending | None = getattr(connection, "_audit_pending", None)
    if token is None or token.done:
        token = _Pending()
        connection._audit_pending = token
    transaction.on_commit(partial(_after_commit, token, using), using=using)
