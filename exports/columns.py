"""Columns of the export datasets: the scope and filters of a request, per-participant facts, formula escaping and
the column declaration with its helper constructors.

Each :class:`Column` carries both its SQL expression (over the dataset's FROM clause, used by ``COPY`` and by the
server-side row stream) and its Python derivation (used when the database is not PostgreSQL, e.g. the embedded SQLite
of ``make run``). Names, order, types and escaping come from this one declaration, so both paths produce the same
file; ``tests/exports/test_paths.py`` checks that they do.

De-identification is by construction: no column reads a name, contact field, free text, token or calendar date. Days
are study days: the participant's LOCAL date (contact time zone, else site time zone) minus day 0, where day 0 is the
schedule's randomization date, else its enrollment date (single-arm protocols), else the local date of
randomized_at / enrolled_at. Calendar dates appear only as the ``date`` columns, which are added for ``?dates=iso``.
The ``arm`` column is added only when the caller may see it (selectors.export_scope decides).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql
from psycopg.sql import Composable

TEXT, INT, FLOAT, DATE = "string", "integer", "float", "date"
YES_NO = {0: "No", 1: "Yes"}

# Characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection": = + - @, plus tab and carriage
# return, which some spreadsheets strip before evaluating).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, prefixed with a single quote. Numbers pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def escape_sql(expr: sql.Composable) -> sql.Composable:
    """The same escaping as :func:`escape_cell`, done by PostgreSQL inside the COPY query. It runs on every text
    cell, so it compares the first character's code (0 for an empty cell) as integers rather than cutting a string."""
    return sql.SQL("CASE WHEN ascii({e}) IN (" + _FORMULA_CODES + ") THEN '''' || {e} ELSE {e} END").format(e=expr)


_FORMULA_CODES = ", ".join(str(ord(c)) for c in FORMULA_START)


# ----------------------------------------------------------------------------------------------------------- context


@dataclass(frozen=True)
class Scope:
    """What the caller may export: rows of these sites (and studies), with or without the arm and calendar dates."""

    site_ids: tuple[int, ...]
    study_ids: tuple[int, ...] | None = None
    with_arm: bool = False
    with_dates: bool = False
    # Sites (among site_ids) where the caller is also an independent rater: safety datasets leave out the participants
    # there whose study hides safety data from raters (the blinded role wins, as with the arm).
    rater_site_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Filters:
    instruments: tuple[str, ...] | None = None
    visit_codes: tuple[str, ...] | None = None
    changed_since: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.instruments:
            out["instrument"] = list(self.instruments)
        if self.visit_codes:
            out["visit_code"] = list(self.visit_codes)
        if self.changed_since:
            out["changed_since"] = self.changed_since.isoformat()
        return out


@dataclass
class PCtx:
    """Per-participant facts the Python path needs for every row (the SQL path gets them from the ``px`` CTE)."""

    participant_id: str
    site_code: str
    tz: zoneinfo.ZoneInfo
    day0: dt.date | None
    arm: str | None = None
    dosing_dates: list[tuple[int, dt.date]] = field(default_factory=list)
    study_id: int = 0
    # Pseudonymous staff ids (exports.pseudonyms.StaffIds), for the datasets that carry them; shared by every row.
    staff: Any = None
    dyad_id: str | None = None  # the participant's treating dyad
    # For the timepoint mapping only (exports.timepoints), never a column: the schedule's protocol version and the
    # allocated arm's code ('' before randomization).
    pv_id: int | None = None
    tp_arm: str = ""

    def local(self, instant: dt.datetime | None) -> dt.date | None:
        return instant.astimezone(self.tz).date() if instant is not None else None

    def day(self, date: dt.date | None) -> int | None:
        return (date - self.day0).days if date is not None and self.day0 is not None else None


# ----------------------------------------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    label: str
    sql: str | Composable  # (the field's name hides the psycopg module inside this class)
    py: Callable[[Mapping[str, Any], PCtx], Any]
    role: str = "base"  # "base" | "arm" (only when unblinded) | "date" (only with ?dates=iso)
    unit: str = ""
    values: Mapping[Any, str] | None = None
    derivation: str = ""
    instrument: str = ""
    instrument_version: str = ""
    # A study day or calendar date of the row's visit or of something done at it: in a blinded export it is given
    # only where every arm's visit of the timepoint is due at the same time (exports.timepoints).
    timing: bool = False
    # What a blinded export (no arm column) of visit rows gives instead (exports.datasets.base.Dataset.visible).
    blinded_sql: str | None = None
    blinded_py: Callable[[Mapping[str, Any], PCtx], Any] | None = None

    @property
    def expr(self) -> Composable:
        return sql.SQL(self.sql) if isinstance(self.sql, str) else self.sql

    def visible(self, scope: Scope) -> bool:
        return (
            self.role == "base" or (self.role == "arm" and scope.with_arm) or (self.role == "date" and scope.with_dates)
        )


def bool01(value: Any) -> int | None:
    return None if value is None else int(bool(value))


def blank_none(value: Any) -> Any:
    return value if value not in ("", None) else None


def iso(date: dt.date | None) -> str | None:
    return date.isoformat() if date is not None else None


def hours_between(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / 3600.0


def local_sql(col: str) -> str:
    """SQL: the participant's local date of an instant column."""
    return f"({col} AT TIME ZONE px.tz)::date"


def day_sql(date_expr: str) -> str:
    """SQL: the study day of a date expression."""
    return f"({date_expr} - px.day0)"


STUDY_DAY = "study day: participant's local date minus day 0 (day 0 = 0; negative before day 0)"

PARTICIPANT_ID = Column(
    "participant_id",
    TEXT,
    "Pseudonymous participant id",
    "px.participant_id",
    lambda r, p: p.participant_id,
    derivation="<STUDY>-<SITE>-<NNN>; never a name",
)
SITE = Column("site", TEXT, "Site code", "px.site_code", lambda r, p: p.site_code)
ARM = Column(
    "arm",
    TEXT,
    "Randomized arm",
    "px.arm",
    lambda r, p: p.arm,
    role="arm",
    derivation="arm code of the participant's allocation slot; present only for unblinded_statistician after the "
    "study is unblinded",
)


VISIT_CODE_ONLY_WITH_ARM = (
    "the arm's own visit code in the protocol; present only with the arm column (an arm's visit codes name it): "
    "blinded exports carry the timepoint instead"
)


def visit_code_column(key: str, label: str = "Visit code (protocol)") -> Column:
    """The visit code, read from the row's ``key``: only where the arm is visible (it names the arm)."""
    return Column(
        "visit_code", TEXT, label, "v.code", lambda r, p: r[key], role="arm", derivation=VISIT_CODE_ONLY_WITH_ARM
    )


TIMEPOINT = Column(
    "timepoint",
    TEXT,
    "Timepoint (arm-neutral code the protocol declares)",
    "tp.timepoint",
    lambda r, p: r.get("_timepoint"),
    derivation="the timepoint of the protocol's blinded schedule the visit serves in the participant's arm (e.g. "
    "BASELINE, PRIMARY, FOLLOW_UP), the same code in every arm; empty for a visit that serves none (unblinded "
    "exports only: blinded exports leave such visits out)",
)


def study_day_column(name: str, label: str, sql_instant: str, key: str) -> Column:
    """The study day of an instant (its local date minus day 0)."""
    return Column(
        name,
        INT,
        label,
        day_sql(local_sql(sql_instant)),
        lambda r, p: p.day(p.local(r[key])),
        unit="days",
        derivation=STUDY_DAY,
        timing=True,
    )


def date_study_day_column(name: str, label: str, sql_date: str, key: str) -> Column:
    """The study day of a calendar date (the date minus day 0)."""
    return Column(
        name, INT, label, day_sql(sql_date), lambda r, p: p.day(r[key]), unit="days", derivation=STUDY_DAY, timing=True
    )


def local_date_column(name: str, label: str, sql_instant: str, key: str) -> Column:
    """The local calendar date of an instant, only with ``?dates=iso``."""
    return Column(
        name,
        DATE,
        label,
        f"to_char({local_sql(sql_instant)}, 'YYYY-MM-DD')",
        lambda r, p: iso(p.local(r[key])),
        role="date",
        derivation="ISO local calendar date (participant's time zone); only with ?dates=iso",
        timing=True,
    )


def date_column(name: str, label: str, sql_date: str, key: str) -> Column:
    """A stored calendar date, only with ``?dates=iso``."""
    return Column(
        name,
        DATE,
        label,
        f"to_char({sql_date}, 'YYYY-MM-DD')",
        lambda r, p: iso(r[key]),
        role="date",
        derivation="ISO local calendar date; only with ?dates=iso",
        timing=True,
    )


WITH_ARM_ONLY = (
    "present only with the arm column: when and whether treatment sessions took place differs by arm in a "
    "delayed-treatment design"
)
STAFF_IDS = (
    "keyed hash (HMAC-SHA-256, 10 hex digits) of the study and the staff user ids: stable within a study, unrelated "
    "across studies, never a name or username"
)
# The staff booked on each visit, grouped once (joined as ``vst`` by a dataset with a visit dyad column): the member
# part of a dyad's lookup key in the px.staff mapping (exports.pseudonyms).
VISIT_STAFF_JOIN = (
    " LEFT JOIN (SELECT vs.visit_id, string_agg(vs.user_id::text, ',' ORDER BY vs.user_id) AS members "
    "FROM scheduling_visit_staff vs GROUP BY vs.visit_id) vst ON vst.visit_id = v.id"
)
# The SQL of a visit's dyad: the staff booked on it, as the lookup key of the px.staff mapping.
_VISIT_DYAD_SQL = (
    "CASE WHEN v.kind IN ('preparation', 'dosing', 'integration') THEN px.staff ->> ('D:' || px.study_id || ':' || "
    "vst.members) END"
)


def visit_dyad_column(key: str) -> Column:
    """The pseudonymous therapist dyad booked on a therapy session (preparation, dosing, integration); the dataset's
    FROM clause joins ``VISIT_STAFF_JOIN``."""
    return Column(
        "therapist_dyad_id",
        TEXT,
        "Pseudonymous id of the therapist dyad booked on this session",
        _VISIT_DYAD_SQL,
        lambda r, p: p.staff.visit_dyad.get(r[key]),
        role="arm",
        derivation="D-<10 hex>: the staff booked on a preparation, dosing or integration session (empty for other "
        "visits or none booked); " + STAFF_IDS + "; " + WITH_ARM_ONLY,
    )


TREATING_DYAD = Column(
    "therapist_dyad_id",
    TEXT,
    "Pseudonymous id of the participant's therapist dyad",
    "px.dyad_id",
    lambda r, p: p.dyad_id,
    role="arm",
    derivation="D-<10 hex>: the staff booked on the participant's first dosing session that has staff (a dyad rarely "
    "changes within a treatment; the visits dataset has each session's own); " + STAFF_IDS + "; " + WITH_ARM_ONLY,
)
