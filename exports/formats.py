"""File formats: CSV (RFC 4180, UTF-8, CRLF), JSON (an array of objects), SPSS .sav and Stata .dta.

CSV on PostgreSQL comes straight from ``COPY (SELECT ...) TO STDOUT WITH (FORMAT csv, HEADER)``: PostgreSQL formats
every cell (and escapes formula cells in the SELECT), Python only batches the bytes, so the export runs at COPY's
speed with flat memory. Everything else consumes row tuples, from a server-side row stream (PostgreSQL) or from the
ORM (any database), and writes them with the same column list.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

from exports.columns import FLOAT, INT, TEXT, escape_cell
from trialsite.replica import read_connection

CHUNK = 256 * 1024  # bytes per chunk handed to the HTTP server: big enough to amortise, small enough to stay flat
ROW_BATCH = 2000  # rows per server-side fetch
# An export reads its rows in one pass. Above jit_above_cost (a few thousand participants) PostgreSQL would compile
# the SELECT's many column expressions first, which costs more than the one pass saves (bench/bench_export.py).
NO_JIT = "SET LOCAL jit = off"

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8; header=present",
    "json": "application/json",
    "sav": "application/x-spss-sav",
    "dta": "application/x-stata-dta",
}


@dataclass
class Progress:
    """Rows written so far; ``complete`` once the last byte was produced. Read by the audit and the CLI bar."""

    rows: int = 0
    complete: bool = False


@dataclass(frozen=True)
class Var:
    name: str
    type: str
    label: str
    value_labels: dict[Any, str] | None = None


def _log(connection: BaseDatabaseWrapper, query: sql.Composable, started: float) -> None:
    # The raw psycopg cursor bypasses Django's debug wrapper; log the statement ourselves so that query counting
    # (django_assert_num_queries, the debug toolbar) sees the COPY or stream as the one query it is.
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": query.as_string(connection.connection), "time": f"{time.monotonic() - started:.3f}"}
        )


def _raw() -> tuple[BaseDatabaseWrapper, psycopg.Connection[Any]]:
    # The replica when these are a statistician's reads and one is configured (trialsite.replica), else the primary.
    connection = read_connection()
    connection.ensure_connection()
    raw: psycopg.Connection[Any] = connection.connection  # untyped in Django's stubs
    return connection, raw


# ---------------------------------------------------------------------------------------------------- row sources


def pg_rows(query: sql.Composed) -> Iterator[tuple[Any, ...]]:
    """Rows of ``query`` from a server-side stream (psycopg ``Cursor.stream``): one statement, bounded memory."""
    started = time.monotonic()
    connection, raw = _raw()
    # In a savepoint for the same reason as csv_copy: an abandoned stream is cancelled without aborting the caller's
    # transaction.
    with transaction.atomic(using=connection.alias), raw.cursor() as cursor:
        cursor.execute(NO_JIT)
        yield from cursor.stream(query, size=ROW_BATCH)
    _log(connection, query, started)


# ----------------------------------------------------------------------------------------------------------- CSV


def csv_copy(query: sql.Composable, progress: Progress) -> Iterator[bytes]:
    """CSV bytes straight from PostgreSQL COPY. COPY sends one message per row (the protocol guarantees row
    boundaries), so ending each message with CRLF instead of LF gives RFC 4180 line breaks without re-parsing."""
    started = time.monotonic()
    connection, raw = _raw()
    copy_sql = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER)").format(query)
    buf = bytearray()
    messages = 0
    # A client that hangs up mid-download closes this generator inside the COPY; psycopg then cancels the query. In
    # a surrounding transaction that would abort it (and the audit row after it), so the COPY runs in a savepoint
    # that the cancellation rolls back to.
    with transaction.atomic(using=connection.alias), raw.cursor() as cursor:
        cursor.execute(NO_JIT)
        with cursor.copy(copy_sql) as copy:
            for data in copy:
                messages += 1
                if data[-1:] == b"\n":
                    buf += data[:-1]
                    buf += b"\r\n"
                else:
                    buf += data
                if len(buf) >= CHUNK:
                    progress.rows = messages - 1
                    yield bytes(buf)
                    buf.clear()
        rowcount = cursor.rowcount
    _log(connection, copy_sql, started)
    progress.rows = rowcount if rowcount is not None and rowcount >= 0 else max(messages - 1, 0)
    if buf:
        yield bytes(buf)


def _csv_cell(value: Any, type_: str) -> Any:
    if value is None:
        return ""
    if type_ == TEXT:
        return escape_cell(value)
    if isinstance(value, float):
        # PostgreSQL prints a float8 as the shortest string that reads back exactly, without a trailing ".0";
        # Python's repr is the same algorithm, so trimming ".0" gives byte-identical files on both paths.
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return value


def csv_rows(vars_: Sequence[Var], rows: Iterable[tuple[Any, ...]], progress: Progress) -> Iterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([v.name for v in vars_])
    types = [v.type for v in vars_]
    n = 0
    for row in rows:
        writer.writerow([_csv_cell(value, t) for value, t in zip(row, types, strict=True)])
        n += 1
        if out.tell() >= CHUNK:
            progress.rows = n
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    progress.rows = n
    if out.tell():
        yield out.getvalue().encode("utf-8")


# ----------------------------------------------------------------------------------------------------------- JSON


def json_rows(vars_: Sequence[Var], rows: Iterable[tuple[Any, ...]], progress: Progress) -> Iterator[bytes]:
    """A JSON array of objects, one per row, streamed in chunks (no per-row model serializer)."""
    names = [v.name for v in vars_]
    parts: list[str] = ["["]
    size = 1
    n = 0
    for row in rows:
        text = ("," if n else "") + "\n" + json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False)
        parts.append(text)
        size += len(text)
        n += 1
        if size >= CHUNK:
            progress.rows = n
            yield "".join(parts).encode("utf-8")
            parts, size = [], 0
    parts.append("\n]\n")
    progress.rows = n
    yield "".join(parts).encode("utf-8")


# ------------------------------------------------------------------------------------------------------ SPSS / Stata


def stat_file(
    kind: str, vars_: Sequence[Var], rows: Iterable[tuple[Any, ...]], progress: Progress, *, label: str
) -> str:
    """Write an SPSS (.sav) or Stata (.dta) file with variable and value labels to a temporary path; returns it.

    Written in chunks through a temporary spool (exports.statfiles), so memory stays flat whatever the row count."""
    from exports import statfiles

    columns = [
        statfiles.Column(
            name=v.name,
            numeric=v.type in (INT, FLOAT),
            label=v.label,
            # Value labels for numeric codes only (text categories are described in the codebook).
            value_labels={float(k): text for k, text in v.value_labels.items()}
            if v.value_labels and v.type in (INT, FLOAT) and all(isinstance(k, int) for k in v.value_labels)
            else None,
        )
        for v in vars_
    ]

    def on_rows(n: int) -> None:
        progress.rows = n

    fd, path = tempfile.mkstemp(prefix="trialsite-export-", suffix="." + kind)
    os.close(fd)
    try:
        statfiles.write(kind, columns, rows, path, label=label, on_rows=on_rows)
    except BaseException:
        os.unlink(path)
        raise
    return path


def file_chunks(path: str) -> Iterator[bytes]:
    """The file's bytes in chunks; the temporary file is removed when the stream ends or is abandoned."""
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
    finally:
        os.unlink(path)


def finishing(chunks: Iterator[bytes], progress: Progress, on_finish: Callable[[Progress], None]) -> Iterator[bytes]:
    """Pass the chunks through; call ``on_finish`` once when the stream ends, completely or not (a client that hangs
    up mid-download still leaves an audit row, marked incomplete)."""
    try:
        yield from chunks
        progress.complete = True
    finally:
        on_finish(progress)
