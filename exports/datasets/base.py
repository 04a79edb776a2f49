"""What a dataset declares, and the portable Python path that reads it.

A dataset is its columns (each with its SQL expression and Python derivation), the FROM clause, order and filters
of the SQL path, and a :class:`RowSource` for the Python path: a queryset from the owning app's selector, narrowed by
the request's filters, ordered like the SQL and streamed as dicts (one query, whatever the number of rows).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import OrderBy, Q, QuerySet
from psycopg.sql import Composable

from exports.columns import Column, Filters, PCtx, Scope
from exports.pseudonyms import StaffIds, staff_ids
from participants.selectors import participants_at_sites
from scheduling.protocol import VisitKind
from scheduling.selectors import visits_at_sites

CHUNK_ROWS = 2000  # rows per ORM fetch: flat memory, few round trips

#: A selector of the owning app: its rows for participants at these sites (and of these studies, if given).
ScopedQuerySet = Callable[[Collection[int], Collection[int] | None], QuerySet[Any]]


@dataclass(frozen=True)
class RowSource:
    """The Python path's rows of one dataset, as ``(row, participant pk)`` pairs in the SQL path's order."""

    queryset: ScopedQuerySet
    fields: tuple[str, ...]
    order_by: tuple[str | OrderBy, ...]
    participant: str  # the field (among ``fields``) that holds the participant's pk
    instrument: str | None = None  # the lookup ?instrument compares with (None: not a filter of this dataset)
    visit_code: str | None = None  # the lookup ?visit_code compares with
    changed: tuple[str, ...] = ()  # the instants ?changed_since compares with (a row matches if any is as late)
    # The owning app's selector when it must also leave out rows hidden from the caller's rater sites (safety data).
    blinded_queryset: Callable[[Scope], QuerySet[Any]] | None = None

    def filtered(self, scope: Scope, filters: Filters) -> QuerySet[Any]:
        if self.blinded_queryset is not None:
            qs = self.blinded_queryset(scope)
        else:
            qs = self.queryset(scope.site_ids, scope.study_ids)
        if filters.instruments and self.instrument:
            qs = qs.filter(**{f"{self.instrument}__in": filters.instruments})
        if filters.visit_codes and self.visit_code:
            qs = qs.filter(**{f"{self.visit_code}__in": filters.visit_codes})
        if filters.changed_since and self.changed:
            since = Q()
            for lookup in self.changed:
                since |= Q(**{f"{lookup}__gte": filters.changed_since})
            qs = qs.filter(since)
        return qs

    def rows(self, scope: Scope, filters: Filters) -> Iterator[tuple[Mapping[str, Any], int]]:
        qs = self.filtered(scope, filters).order_by(*self.order_by).values(*self.fields)
        for row in qs.iterator(chunk_size=CHUNK_ROWS):
            yield row, row[self.participant]


#: The rows of a dataset computed in Python on every database (a summary per participant rather than a SELECT).
SummaryRows = Callable[["Dataset", Scope, Filters], Iterator[tuple[Any, ...]]]


@dataclass(frozen=True)
class Dataset:
    name: str
    label: str
    columns: tuple[Column, ...]
    from_sql: str  # joins after "FROM px"
    order_sql: str
    filter_sql: Mapping[str, str]  # request parameter -> SQL expression it compares with
    changed_sql: str  # expression of the instant its source last changed ("": no ?changed_since)
    source: RowSource | None
    needs_dosing: bool = False  # the Python derivations read each participant's dosing dates
    needs_staff: bool = False  # it has pseudonymous staff columns (exports.pseudonyms)
    # Columns that come from data (a demographic form, instrument definitions), read when the export starts.
    dynamic_columns: Callable[[], tuple[Column, ...]] | None = None
    # Rows computed in Python on every database; such a dataset has no SQL path (COPY is for long tables).
    summary_rows: SummaryRows | None = None
    # SQL condition on the FROM clause that leaves out rows hidden from the caller (None: nothing to leave out).
    hidden_sql: Callable[[Scope], Composable | None] | None = None

    def all_columns(self) -> tuple[Column, ...]:
        return self.dynamic_columns() if self.dynamic_columns is not None else self.columns

    def visible(self, scope: Scope) -> list[Column]:
        return [c for c in self.all_columns() if c.visible(scope)]


def participant_contexts(scope: Scope, *, with_dosing: bool = False, staff: StaffIds | None = None) -> dict[int, PCtx]:
    """Day 0, time zone and arm per participant in scope: one query (two with dosing dates), any number of rows.
    With ``staff``, each context carries the pseudonyms and the participant's treating dyad."""
    fields = [
        "id",
        "study_id",
        "participant_id",
        "site__code",
        "contact__time_zone",
        "site__time_zone",
        "schedule__randomization_date",
        "schedule__enrollment_date",
        "randomized_at",
        "enrolled_at",
    ]
    if scope.with_arm:
        fields.append("allocation__arm__code")
    out: dict[int, PCtx] = {}
    participants = participants_at_sites(scope.site_ids, scope.study_ids)
    for row in participants.values(*fields).iterator(chunk_size=CHUNK_ROWS):
        tz = zoneinfo.ZoneInfo(row["contact__time_zone"] or row["site__time_zone"])
        ctx = PCtx(row["participant_id"], row["site__code"], tz, None, row.get("allocation__arm__code"))
        ctx.study_id = row["study_id"]
        if staff is not None:
            ctx.staff, ctx.dyad_id = staff, staff.treating_dyad.get(row["id"])
        ctx.day0 = (
            row["schedule__randomization_date"]
            or row["schedule__enrollment_date"]
            or ctx.local(row["randomized_at"])
            or ctx.local(row["enrolled_at"])
        )
        out[row["id"]] = ctx
    if with_dosing and out:
        dosing = visits_at_sites(scope.site_ids, scope.study_ids).filter(
            kind=VisitKind.DOSING, occurred_at__isnull=False
        )
        for pid, vid, occurred in dosing.values_list("participant_id", "id", "occurred_at").iterator(
            chunk_size=CHUNK_ROWS
        ):
            ctx = out[pid]
            local = ctx.local(occurred)
            if local is not None:  # always: the query keeps visits that took place
                ctx.dosing_dates.append((vid, local))
    return out


def python_rows(dataset: Dataset, scope: Scope, filters: Filters) -> Iterator[tuple[Any, ...]]:
    """The dataset's rows in column order, computed in Python from ORM streams (any database)."""
    if dataset.summary_rows is not None:
        yield from dataset.summary_rows(dataset, scope, filters)
        return
    assert dataset.source is not None  # every dataset has a row source or summary rows
    staff = staff_ids(scope.site_ids, scope.study_ids) if dataset.needs_staff else None
    contexts = participant_contexts(scope, with_dosing=dataset.needs_dosing, staff=staff)
    cols = dataset.visible(scope)
    for row, participant_pk in dataset.source.rows(scope, filters):
        ctx = contexts[participant_pk]
        yield tuple(c.py(row, ctx) for c in cols)
