"""What a dataset declares, and the portable Python path that reads it.

A dataset is its columns (each with its SQL expression and Python derivation), the FROM clause, order and filters
of the SQL path, and a :class:`RowSource` for the Python path: a queryset from the owning app's selector, narrowed by
the request's filters, ordered like the SQL and streamed as dicts (one query, whatever the number of rows).
"""

from __future__ import annotations

import dataclasses
import zoneinfo
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import OrderBy, Q, QuerySet
from psycopg import sql
from psycopg.sql import Composable

from exports.columns import Column, Filters, PCtx, Scope
from exports.pseudonyms import StaffIds, staff_ids
from exports.timepoints import NO_ARM, timepoint_map
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

    def visit_unscheduled(self) -> str | None:
        """The lookup of the row's visit's ``unscheduled`` flag (beside its code)."""
        if self.visit_code is None:
            return None
        return self.visit_code[: -len("code")] + "unscheduled"

    def rows(self, scope: Scope, filters: Filters) -> Iterator[tuple[dict[str, Any], int]]:
        unscheduled = self.visit_unscheduled()
        fields = (*self.fields, unscheduled) if unscheduled and unscheduled not in self.fields else self.fields
        qs = self.filtered(scope, filters).order_by(*self.order_by).values(*fields)
        for row in qs.iterator(chunk_size=CHUNK_ROWS):
            yield row, row[self.participant]


# How a dataset's rows relate to visits, which decides what a blinded export (no arm column) does with them
# (exports.timepoints): NO_VISIT rows have none; VISIT_ROWS are rows of a visit (a blinded export keeps only those of
# visits that serve a timepoint); MAYBE_VISIT rows may be tied to a visit (kept when tied to none or to a visit that
# serves a timepoint); ANY_VISIT rows may be tied to a visit and are all kept, under the timepoint (safety events).
NO_VISIT, VISIT_ROWS, MAYBE_VISIT, ANY_VISIT = "", "visit", "maybe", "any"
_TIMED = (VISIT_ROWS, MAYBE_VISIT)
BLINDED_TIMING = (
    "; blinded exports: empty unless every arm's visit of the row's timepoint is due at the same time (a date or day "
    "of an arm-specific timing would name the arm)"
)


def blinded_column(col: Column, *, timed: bool = True) -> Column:
    """A column as a blinded export of visit rows gives it: its declared replacement, or (a study day or date, when
    ``timed``) empty unless the row's timepoint has the same timing in every arm (or the row has no visit)."""
    if col.blinded_sql is not None and col.blinded_py is not None:
        return dataclasses.replace(col, sql=col.blinded_sql, py=col.blinded_py)
    if not col.timing or not timed:
        return col
    expr = col.expr
    py = col.py

    def when_same_timing(r: Mapping[str, Any], p: PCtx) -> Any:
        return py(r, p) if not r.get("_has_visit") or r.get("_same_timing") else None

    return dataclasses.replace(
        col,
        sql=sql.SQL("CASE WHEN v.id IS NULL OR tp.same_timing THEN {} END").format(expr),
        py=when_same_timing,
        derivation=col.derivation + BLINDED_TIMING,
    )


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
    # How its rows relate to visits (NO_VISIT, VISIT_ROWS, MAYBE_VISIT, ANY_VISIT); the FROM clause of any but
    # NO_VISIT names the visit ``v`` and the SQL path joins its timepoint ``tp`` (exports.timepoints).
    visit_rows: str = NO_VISIT

    def all_columns(self) -> tuple[Column, ...]:
        return self.dynamic_columns() if self.dynamic_columns is not None else self.columns

    def blinded(self, scope: Scope) -> bool:
        """Its rows are aligned on timepoints for this caller: visit rows exported without the arm."""
        return bool(self.visit_rows) and not scope.with_arm

    def visible(self, scope: Scope) -> list[Column]:
        cols = [c for c in self.all_columns() if c.visible(scope)]
        if self.blinded(scope):
            return [blinded_column(c, timed=self.visit_rows in _TIMED) for c in cols]
        return cols

    def blinded_row_sql(self, scope: Scope) -> str | None:
        """The SQL condition that keeps a blinded export to timepoints (None: not blinded, or nothing to leave out)."""
        if not self.blinded(scope):
            return None
        if self.visit_rows == VISIT_ROWS:
            return "tp.timepoint IS NOT NULL"
        if self.visit_rows == MAYBE_VISIT:
            return "(v.id IS NULL OR tp.timepoint IS NOT NULL)"
        return None


def participant_contexts(
    scope: Scope, *, with_dosing: bool = False, staff: StaffIds | None = None, with_timepoints: bool = False
) -> dict[int, PCtx]:
    """Day 0, time zone and arm per participant in scope: one query (two with dosing dates), any number of rows.
    With ``staff``, each context carries the pseudonyms and the participant's treating dyad; ``with_timepoints``, what
    the timepoint mapping needs (exports.timepoints)."""
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
    if with_timepoints or scope.with_arm:
        fields.append("allocation__arm__code")
    if with_timepoints:
        fields.append("schedule__protocol_version_id")
    out: dict[int, PCtx] = {}
    participants = participants_at_sites(scope.site_ids, scope.study_ids)
    for row in participants.values(*fields).iterator(chunk_size=CHUNK_ROWS):
        tz = zoneinfo.ZoneInfo(row["contact__time_zone"] or row["site__time_zone"])
        arm = row.get("allocation__arm__code")
        ctx = PCtx(row["participant_id"], row["site__code"], tz, None, arm if scope.with_arm else None)
        ctx.study_id = row["study_id"]
        if with_timepoints:
            # For the timepoint mapping only: never a column of a blinded export.
            ctx.pv_id, ctx.tp_arm = row["schedule__protocol_version_id"], arm or NO_ARM
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
    source = dataset.source
    with_tp = bool(dataset.visit_rows)
    contexts = participant_contexts(scope, with_dosing=dataset.needs_dosing, staff=staff, with_timepoints=with_tp)
    cols = dataset.visible(scope)
    blinded = dataset.blinded(scope)
    mapping = timepoint_map(scope) if with_tp else {}
    # A blinded export filters ?visit_code by timepoint code, after the mapping (an arm's visit code would name it).
    wanted = set(filters.visit_codes or ()) if blinded else set()
    if wanted:
        filters = dataclasses.replace(filters, visit_codes=None)
    for row, participant_pk in source.rows(scope, filters):
        ctx = contexts[participant_pk]
        if with_tp:
            code = row[source.visit_code] if source.visit_code else None
            unscheduled = source.visit_unscheduled()
            of = (
                mapping.get((ctx.pv_id or 0, ctx.tp_arm, code))
                if code is not None and not (unscheduled and row[unscheduled])
                else None
            )
            row["_has_visit"] = code is not None
            row["_timepoint"] = of.timepoint if of else None
            row["_same_timing"] = bool(of and of.same_timing)
            row["_tp_kind"] = of.kind if of else None
            if blinded:
                if of is None and code is not None and dataset.visit_rows != ANY_VISIT:
                    continue
                if wanted and (of is None or of.timepoint not in wanted):
                    continue
        yield tuple(c.py(row, ctx) for c in cols)
