"""Sending the statistician's reads to a read replica (docs/operations.md, "Past one machine").

Exports and the analysis API read a lot and write nothing but one audit row at the end, so they are the reads worth
moving off the primary. They are marked by the code that does them (``statistician_reads()``), not by model: the
same tables serve coordinators, who must read their own writes, and a freeze or a scope check must see the primary.

A read goes to the ``replica`` alias only when all of these hold, and to ``default`` otherwise:

- a replica is configured (``DATABASE_REPLICA_URL``; with none, as in the tests and the embedded demo, there is
  nothing to choose);
- the code is inside ``statistician_reads()``;
- no transaction is open on the primary. A read inside a transaction that writes, or inside a freeze's repeatable-read
  snapshot, must see that transaction's own state, which the replica cannot show.

Writes always go to the primary, and migrations run only there (a streaming replica refuses writes anyway).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

REPLICA = "replica"

_statistician_reads: ContextVar[bool] = ContextVar("statistician_reads", default=False)


@contextmanager
def statistician_reads() -> Iterator[None]:
    """Within this block, reads may go to the replica (see the module docstring for when they do)."""
    token = _statistician_reads.set(True)
    try:
        yield
    finally:
        _statistician_reads.reset(token)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def read_alias() -> str:
    """The alias a read made here and now uses: ``replica`` or ``default``."""
    if not _statistician_reads.get() or not replica_configured():
        return DEFAULT_DB_ALIAS
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    return REPLICA


def read_connection() -> BaseDatabaseWrapper:
    """The connection for a raw read (COPY, a row stream, a COUNT) made here and now."""
    return connections[read_alias()]


class StatisticianStream:
    """An iterator that runs each step of ``chunks`` inside ``statistician_reads()``.

    A streamed response is produced after the view returned, between the server's writes to the socket, so a ``with``
    block in the view would be over by then; a generator that held the block open across ``yield`` would leak the
    setting into whatever code runs between chunks. This sets it around each step only."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> StatisticianStream:
        return self

    def __next__(self) -> bytes:
        with statistician_reads():
            return next(self._chunks)

    def close(self) -> None:
        # Closing the stream (a client that hung up) closes the generator under it, which ends its COPY or stream
        # on the same connection it started on.
        close = getattr(self._chunks, "close", None)
        if close is not None:
            with statistician_reads():
                close()


class ReplicaRouter:
    """Reads marked as the statistician's go to the replica when one is configured; everything else to default."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        return read_alias()

    def db_for_write(self, model: type[Any], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        # The replica holds the same rows as the primary: an object read from one may point at one read from the other.
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS
