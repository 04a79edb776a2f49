"""A dataset export: check the request and the caller's scope, open the stream in the requested format, audit it
when it ends.

Every request is validated (and its scope and blinding decided) before the first byte is produced, so a bad filter is
a 400 naming the parameter, never a half-written file. The rows are then produced lazily while the response streams;
the audit row is written when the stream ends, in its own transaction, with the row count.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from psycopg import sql

from audit.models import AuditEvent
from audit.services import audit_record
from exports import codebook as cb
from exports import formats
from exports.columns import TEXT, Scope
from exports.datasets import DATASETS
from exports.datasets.base import python_rows
from exports.formats import Progress, Var
from exports.pseudonyms import staff_ids
from exports.request import CODEBOOK, ExportRequest, parse_request
from exports.selectors import export_scope
from exports.sql import select_sql, wide_select_sql
from exports.timepoints import timepoint_map
from exports.wide import index_columns, python_wide_rows, wide_columns
from participants.access import Actor
from trialsite.replica import StatisticianStream, read_connection, statistician_reads

Rows = Iterator[tuple[Any, ...]]


@dataclass
class Export:
    request: ExportRequest
    scope: Scope
    variables: list[Var]
    content_type: str
    filename: str
    chunks: Iterator[bytes]
    progress: Progress = field(default_factory=Progress)
    total: Callable[[], int | None] | None = None

    def count_rows(self) -> int | None:
        """The number of rows the stream will hold (one extra COUNT query; for progress bars), None if unknown."""
        return self.total() if self.total else None


def _on_postgres(force_python: bool) -> bool:
    return connection.vendor == "postgresql" and not force_python


def export_open(
    *,
    user: Actor,
    dataset: str,
    fmt: str,
    params: Mapping[str, Any] | None = None,
    force_python: bool = False,
    audit: bool = True,
    actor_username: str | None = None,
) -> Export:
    """Check the request and the caller's scope; return the (lazy) stream. Raises ServiceError subclasses.

    The export is audited when the stream ends (``audit=False`` only for a freeze, which audits itself)."""
    request = parse_request(dataset, fmt, params or {})
    scope, _sites = export_scope(
        user, site_codes=list(request.sites), study_codes=list(request.studies), dates=request.dates
    )
    progress = Progress()
    total: Callable[[], int | None] | None = None
    chunks: Iterator[bytes]

    if dataset == CODEBOOK:
        table = cb.codebook_rows(scope)
        variables = [Var(f, TEXT, f) for f in cb.FIELDS]
        total = table.__len__
        if fmt == "json":
            chunks = _json_document(table, progress)
        else:
            chunks = formats.csv_rows(variables, cb.as_table(table), progress)
        name = "codebook"
    else:
        query: Callable[[bool], sql.Composed]
        py_rows: Callable[[], Rows]
        # A summary dataset (one row per participant) is computed in Python on every database.
        summary = not request.wide and DATASETS[dataset].summary_rows is not None
        pg = _on_postgres(force_python) and not summary
        if request.wide:
            wide = wide_columns(cb.instruments(), only=request.filters.instruments)
            variables = [
                Var(c.name, c.type, c.label, dict(c.values) if c.values else None) for c in index_columns(scope)
            ]
            variables += [
                Var(w.name, w.type, w.label, dict(w.values) if w.values and w.type != TEXT else None) for w in wide
            ]

            tps = timepoint_map(scope) if pg else None

            def query(escape: bool) -> sql.Composed:
                return wide_select_sql(wide, scope, request.filters, escape=escape, timepoints=tps)

            def py_rows() -> Rows:
                return python_wide_rows(wide, scope, request.filters)

            name = "scores_wide"
        else:
            ds = DATASETS[dataset]
            variables = [Var(c.name, c.type, c.label, dict(c.values) if c.values else None) for c in ds.visible(scope)]
            staff = staff_ids(scope.site_ids, scope.study_ids) if ds.needs_staff and pg else None
            # Read once for the count and the stream (exports.timepoints).
            tps = timepoint_map(scope) if ds.visit_rows and pg else None

            def query(escape: bool) -> sql.Composed:
                return select_sql(ds, scope, request.filters, escape=escape, staff=staff, timepoints=tps)

            def py_rows() -> Rows:
                return python_rows(ds, scope, request.filters)

            name = dataset

        def rows() -> Rows:
            return formats.pg_rows(query(False)) if pg else py_rows()

        if pg:

            def count() -> int | None:
                return _count(query(False))

            total = count

        if fmt == "csv":
            chunks = formats.csv_copy(query(True), progress) if pg else formats.csv_rows(variables, rows(), progress)
        elif fmt == "json":
            chunks = formats.json_rows(variables, rows(), progress)
        else:
            chunks = _stat_chunks(fmt, variables, rows, progress, label=f"trialsite {name}")

    def finish(p: Progress) -> None:
        if audit:
            _audit_export(user, request, scope, p, actor_username=actor_username)

    # The rows are the statistician's reads: on the replica when one is configured (trialsite.replica). The request's
    # validation and scope above were read from the primary, so a role revoked a moment ago is already gone; the audit
    # row at the end is a write and goes to the primary.
    return Export(
        request=request,
        scope=scope,
        variables=variables,
        content_type=formats.CONTENT_TYPES[fmt],
        filename=f"{name}.{fmt}",
        chunks=StatisticianStream(formats.finishing(chunks, progress, finish)),
        progress=progress,
        total=_statistician_count(total) if total is not None else None,
    )


def _statistician_count(total: Callable[[], int | None]) -> Callable[[], int | None]:
    def count() -> int | None:
        with statistician_reads():
            return total()

    return count


def _count(query: sql.Composed) -> int:
    connection = read_connection()
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SELECT count(*) FROM ({}) t").format(query).as_string(connection.connection))
        row = cursor.fetchone()
    assert row is not None  # a COUNT always returns one row
    return int(row[0])


def _json_document(rows: Sequence[dict[str, Any]], progress: Progress) -> Iterator[bytes]:
    progress.rows = len(rows)
    yield json.dumps(rows, ensure_ascii=False, indent=1).encode("utf-8")


def _stat_chunks(
    fmt: str, variables: Sequence[Var], rows: Callable[[], Rows], progress: Progress, *, label: str
) -> Iterator[bytes]:
    # The rows are read only when the first chunk is asked for, like every other format.
    path = formats.stat_file(fmt, variables, rows(), progress, label=label)
    yield from formats.file_chunks(path)


def _audit_export(
    user: Actor, request: ExportRequest, scope: Scope, progress: Progress, *, actor_username: str | None = None
) -> None:
    details = request.describe() | {
        "rows": progress.rows,
        "complete": progress.complete,
        "arm": scope.with_arm,
        "site_ids": list(scope.site_ids),
    }
    # Its own transaction: the stream is over, and this row must commit whatever the request does next.
    with transaction.atomic():
        audit_record(
            by=user,
            action=AuditEvent.Action.EXPORT,
            entity_type="export",
            entity_id=request.dataset + ("_wide" if request.wide else ""),
            changes=[("export", None, details)],
            sensitivity=AuditEvent.Sensitivity.ALLOCATION if scope.with_arm else "",
            actor_username=actor_username,
        )
