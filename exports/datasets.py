"""Export datasets: one declaration per dataset, shared by the PostgreSQL path and the portable Python path.

Each :class:`Column` carries both its SQL expression (over the dataset's FROM clause, used by ``COPY`` and by the
server-side row stream) and its Python derivation (used when the database is not PostgreSQL, e.g. the embedded SQLite
of ``make run``). Names, order, types and escaping come from this one list, so both paths produce the same file;
``tests/exports/test_paths.py`` checks that they do.

De-identification is by construction: no column reads a name, contact field, free text, token or calendar date. Days
are study days: the participant's LOCAL date (contact time zone, else site time zone) minus day 0, where day 0 is the
schedule's randomization date, else its enrollment date (single-arm protocols), else the local date of
randomized_at / enrolled_at. Calendar dates appear only as the ``date`` columns, which are added for ``?dates=iso``.
The ``arm`` column is added only when the caller may see it (selectors.export_scope decides).

All SQL text here is static and trusted; every value that comes from a request is composed in with
``psycopg.sql.Literal`` (see :func:`select_sql`), never formatted into a string.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

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
    """The same escaping as :func:`escape_cell`, done by PostgreSQL inside the COPY query."""
    return sql.SQL(
        "CASE WHEN left({e}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') THEN '''' || {e} ELSE {e} END"
    ).format(e=expr)


# ----------------------------------------------------------------------------------------------------------- context


@dataclass(frozen=True)
class Scope:
    """What the caller may export: rows of these sites (and studies), with or without the arm and calendar dates."""

    site_ids: tuple[int, ...]
    study_ids: tuple[int, ...] | None = None
    with_arm: bool = False
    with_dates: bool = False


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
    sql: str | sql.Composable
    py: Callable[[Mapping[str, Any], PCtx], Any]
    role: str = "base"  # "base" | "arm" (only when unblinded) | "date" (only with ?dates=iso)
    unit: str = ""
    values: Mapping[Any, str] | None = None
    derivation: str = ""
    instrument: str = ""
    instrument_version: str = ""

    @property
    def expr(self) -> sql.Composable:
        return sql.SQL(self.sql) if isinstance(self.sql, str) else self.sql


def _bool01(value: Any) -> int | None:
    return None if value is None else int(bool(value))


def _blank_none(value: Any) -> Any:
    return value if value not in ("", None) else None


def _iso(date: dt.date | None) -> str | None:
    return date.isoformat() if date is not None else None


def _local_sql(col: str) -> str:
    return f"({col} AT TIME ZONE px.tz)::date"


def _day_sql(date_expr: str) -> str:
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


def _visit_code(key: str = "visit_code") -> Column:
    return Column("visit_code", TEXT, "Visit code (protocol)", "v.code", lambda r, p: r[key])


def _study_day(name: str, label: str, sql_instant: str, key: str) -> Column:
    return Column(
        name,
        INT,
        label,
        _day_sql(_local_sql(sql_instant)),
        lambda r, p: p.day(p.local(r[key])),
        unit="days",
        derivation=STUDY_DAY,
    )


def _local_date(name: str, label: str, sql_instant: str, key: str) -> Column:
    return Column(
        name,
        DATE,
        label,
        f"to_char({_local_sql(sql_instant)}, 'YYYY-MM-DD')",
        lambda r, p: _iso(p.local(r[key])),
        role="date",
        derivation="ISO local calendar date (participant's time zone); only with ?dates=iso",
    )


def _date(name: str, label: str, sql_date: str, key: str) -> Column:
    return Column(
        name,
        DATE,
        label,
        f"to_char({sql_date}, 'YYYY-MM-DD')",
        lambda r, p: _iso(r[key]),
        role="date",
        derivation="ISO local calendar date; only with ?dates=iso",
    )


# ---------------------------------------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class Dataset:
    name: str
    label: str
    columns: tuple[Column, ...]
    from_sql: str  # joins after "FROM px"
    order_sql: str
    filter_sql: Mapping[str, str]  # request parameter -> SQL expression it compares with
    changed_sql: str  # expression of the instant its source last changed
    py_rows: Callable[..., Iterator[tuple[Mapping[str, Any], int]]] | None = None  # (row, participant pk)
    grouped: bool = False

    def visible(self, scope: Scope) -> list[Column]:
        return [
            c
            for c in self.columns
            if c.role == "base" or (c.role == "arm" and scope.with_arm) or (c.role == "date" and scope.with_dates)
        ]


_WITHDRAWAL_LABELS = {
    "stop_contact": "Stop contact (keep follow-up data collection by records)",
    "stop_follow_up": "Stop follow-up visits",
    "stop_data_use": "Stop all further use of data",
}


def _status_values() -> dict[str, str]:
    from participants.models import Participant

    return {v: v.replace("_", " ") for v in Participant.Status.values}


def _visit_status_values() -> dict[str, str]:
    from scheduling.models import Visit

    return {v: v for v in Visit.Status.values}


def _visit_kind_values() -> dict[str, str]:
    from scheduling.protocol import VISIT_KINDS

    return {k: k.replace("_", " ") for k in VISIT_KINDS}


def _deviation_values() -> dict[str, str]:
    from scheduling.models import ProtocolDeviation

    return {v: v.replace("_", " ") for v in ProtocolDeviation.Type.values}


# --- Python-path row sources (ORM .values() streams; one query each, whatever the number of rows) -------------------


def _scoped(qs, scope: Scope, prefix: str = "participant__"):
    qs = qs.filter(**{f"{prefix}site_id__in": scope.site_ids})
    if scope.study_ids is not None:
        qs = qs.filter(**{f"{prefix}study_id__in": scope.study_ids})
    return qs


def _py_participants(scope: Scope, filters: Filters):
    from django.db.models import OuterRef, Subquery

    from participants.models import ConsentRecord, Participant

    latest = ConsentRecord.objects.filter(participant=OuterRef("pk")).order_by("-id").values("document__version")[:1]
    qs = _scoped(Participant.objects.all(), scope, prefix="").annotate(consent_version=Subquery(latest))
    if filters.changed_since:
        qs = qs.filter(updated_at__gte=filters.changed_since)
    qs = qs.order_by("participant_id").values(
        "id",
        "status",
        "stratum",
        "consent_version",
        "randomized_at",
        "enrolled_at",
        "withdrawal_level",
        "withdrawal_date",
    )
    for row in qs.iterator(chunk_size=2000):
        yield row, row["id"]


def _py_visits(scope: Scope, filters: Filters):
    from django.db.models import F

    from scheduling.models import Visit

    qs = _scoped(Visit.objects.all(), scope)
    if filters.visit_codes:
        qs = qs.filter(code__in=filters.visit_codes)
    if filters.changed_since:
        qs = qs.filter(updated_at__gte=filters.changed_since)
    qs = qs.order_by("participant__participant_id", F("target_date").asc(nulls_last=True), "id").values(
        "id",
        "participant_id",
        "code",
        "kind",
        "unscheduled",
        "status",
        "target_date",
        "window_start",
        "window_end",
        "occurred_at",
        "dosing_number",
    )
    for row in qs.iterator(chunk_size=2000):
        row["visit_code"] = row["code"]
        yield row, row["participant_id"]


def _py_responses(scope: Scope, filters: Filters):
    from assessments.models import Answer

    qs = _scoped(Answer.objects.all(), scope, prefix="response__participant__")
    if filters.instruments:
        qs = qs.filter(response__instrument_code__in=filters.instruments)
    if filters.visit_codes:
        qs = qs.filter(response__visit__code__in=filters.visit_codes)
    if filters.changed_since:
        qs = qs.filter(response__updated_at__gte=filters.changed_since)
    qs = qs.order_by("response__participant__participant_id", "response_id", "id").values(
        "item_code",
        "value",
        "response__participant_id",
        "response__visit__code",
        "response__instrument_code",
        "response__instrument_version",
        "response__administration__respondent",
        "response__source",
        "response__submitted_at",
    )
    for row in qs.iterator(chunk_size=2000):
        yield row, row["response__participant_id"]


def _scores_queryset(scope: Scope, filters: Filters):
    from django.db.models import Q

    from assessments.models import Score

    qs = _scoped(Score.objects.all(), scope, prefix="response__participant__")
    if filters.instruments:
        qs = qs.filter(response__instrument_code__in=filters.instruments)
    if filters.visit_codes:
        qs = qs.filter(response__visit__code__in=filters.visit_codes)
    if filters.changed_since:
        since = filters.changed_since
        qs = qs.filter(Q(response__updated_at__gte=since) | Q(computed_at__gte=since))
    return qs


def _py_scores(scope: Scope, filters: Filters):
    from django.db.models import Case, IntegerField, Value, When

    qs = (
        _scores_queryset(scope, filters)
        .annotate(kind_order=Case(When(kind="scale", then=Value(0)), default=Value(1), output_field=IntegerField()))
        .order_by("response__participant__participant_id", "response_id", "kind_order", "id")
        .values(
            "kind",
            "code",
            "value",
            "text_value",
            "complete",
            "prorated",
            "method",
            "instrument_version",
            "scoring_version",
            "response__participant_id",
            "response__visit__code",
            "response__instrument_code",
            "response__submitted_at",
        )
    )
    for row in qs.iterator(chunk_size=2000):
        yield row, row["response__participant_id"]


def _py_deviations(scope: Scope, filters: Filters):
    from scheduling.models import ProtocolDeviation

    qs = _scoped(ProtocolDeviation.objects.all(), scope)
    if filters.visit_codes:
        qs = qs.filter(visit__code__in=filters.visit_codes)
    if filters.changed_since:
        qs = qs.filter(recorded_at__gte=filters.changed_since)
    qs = qs.order_by("participant__participant_id", "recorded_at", "id").values(
        "participant_id", "visit__code", "type", "days_outside", "recorded_at"
    )
    for row in qs.iterator(chunk_size=2000):
        yield row, row["participant_id"]


def _py_alerts(scope: Scope, filters: Filters):
    from django.db.models import Q

    from assessments.models import SafetyAlert

    qs = _scoped(SafetyAlert.objects.all(), scope)
    if filters.instruments:
        qs = qs.filter(response__instrument_code__in=filters.instruments)
    if filters.visit_codes:
        qs = qs.filter(response__visit__code__in=filters.visit_codes)
    if filters.changed_since:
        since = filters.changed_since
        qs = qs.filter(Q(created_at__gte=since) | Q(acknowledged_at__gte=since) | Q(escalated_at__gte=since))
    qs = qs.order_by("participant__participant_id", "created_at", "id").values(
        "participant_id",
        "response__visit__code",
        "response__instrument_code",
        "rule_code",
        "severity",
        "created_at",
        "acknowledged_at",
        "escalated_at",
    )
    for row in qs.iterator(chunk_size=2000):
        yield row, row["participant_id"]


def _hours(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / 3600.0


def _in_window(r: Mapping[str, Any], p: PCtx) -> int | None:
    occurred = p.local(r["occurred_at"])
    if occurred is None or r["window_start"] is None or r["window_end"] is None:
        return None
    return int(r["window_start"] <= occurred <= r["window_end"])


def _days_since_dosing(r: Mapping[str, Any], p: PCtx) -> int | None:
    occurred = p.local(r["occurred_at"])
    if occurred is None:
        return None
    earlier = [d for vid, d in p.dosing_dates if vid != r["id"] and d <= occurred]
    return (occurred - max(earlier)).days if earlier else None


_OCCURRED = _local_sql("v.occurred_at")

PARTICIPANTS = Dataset(
    name="participants",
    label="One row per participant",
    columns=(
        PARTICIPANT_ID,
        SITE,
        Column("status", TEXT, "Participant status", "p.status", lambda r, p: r["status"], values=_status_values()),
        Column(
            "stratum",
            TEXT,
            "Randomization stratum",
            "NULLIF(p.stratum, '')",
            lambda r, p: _blank_none(r["stratum"]),
            derivation="stratum code given at creation or randomization (default: the site code)",
        ),
        Column(
            "consent_version",
            TEXT,
            "Version of the latest signed consent",
            "cv.version",
            lambda r, p: r["consent_version"],
        ),
        Column(
            "randomized_study_day",
            INT,
            "Study day of randomization",
            _day_sql(_local_sql("p.randomized_at")),
            lambda r, p: p.day(p.local(r["randomized_at"])),
            unit="days",
            derivation=STUDY_DAY,
        ),
        Column(
            "withdrawal_level",
            TEXT,
            "Withdrawal level",
            "NULLIF(p.withdrawal_level, '')",
            lambda r, p: _blank_none(r["withdrawal_level"]),
            values=_WITHDRAWAL_LABELS,
            derivation="empty when not withdrawn",
        ),
        Column(
            "withdrawal_study_day",
            INT,
            "Study day of withdrawal",
            _day_sql("p.withdrawal_date"),
            lambda r, p: p.day(r["withdrawal_date"]),
            unit="days",
            derivation=STUDY_DAY,
        ),
        ARM,
        Column(
            "day0_date",
            DATE,
            "Day 0 (local date)",
            "to_char(px.day0, 'YYYY-MM-DD')",
            lambda r, p: _iso(p.day0),
            role="date",
            derivation="ISO local calendar date; only with ?dates=iso",
        ),
        _local_date("enrolled_date", "Enrollment date (local)", "p.enrolled_at", "enrolled_at"),
        _local_date("randomized_date", "Randomization date (local)", "p.randomized_at", "randomized_at"),
        _date("withdrawal_date", "Withdrawal date (local)", "p.withdrawal_date", "withdrawal_date"),
    ),
    from_sql=(
        "JOIN participants_participant p ON p.id = px.id "
        "LEFT JOIN LATERAL (SELECT d.version FROM participants_consentrecord cr "
        "JOIN participants_consentdocument d ON d.id = cr.document_id "
        "WHERE cr.participant_id = p.id ORDER BY cr.id DESC LIMIT 1) cv ON true"
    ),
    order_sql="px.participant_id",
    filter_sql={},
    changed_sql="p.updated_at",
    py_rows=_py_participants,
)

VISITS = Dataset(
    name="visits",
    label="One row per visit (planned, scheduled, completed, missed or cancelled)",
    columns=(
        PARTICIPANT_ID,
        SITE,
        _visit_code(),
        Column("visit_kind", TEXT, "Visit kind", "v.kind", lambda r, p: r["kind"], values=_visit_kind_values()),
        Column(
            "unscheduled",
            INT,
            "Added outside the protocol plan",
            "v.unscheduled::int",
            lambda r, p: _bool01(r["unscheduled"]),
            values=YES_NO,
        ),
        Column("status", TEXT, "Visit status", "v.status", lambda r, p: r["status"], values=_visit_status_values()),
        Column(
            "target_study_day",
            INT,
            "Target study day",
            _day_sql("v.target_date"),
            lambda r, p: p.day(r["target_date"]),
            unit="days",
            derivation=STUDY_DAY,
        ),
        Column(
            "window_start_study_day",
            INT,
            "First study day of the visit window",
            _day_sql("v.window_start"),
            lambda r, p: p.day(r["window_start"]),
            unit="days",
            derivation=STUDY_DAY,
        ),
        Column(
            "window_end_study_day",
            INT,
            "Last study day of the visit window",
            _day_sql("v.window_end"),
            lambda r, p: p.day(r["window_end"]),
            unit="days",
            derivation=STUDY_DAY,
        ),
        _study_day("occurred_study_day", "Study day the visit took place", "v.occurred_at", "occurred_at"),
        Column(
            "in_window",
            INT,
            "Took place inside its window",
            (
                "CASE WHEN v.occurred_at IS NULL OR v.window_start IS NULL OR v.window_end IS NULL THEN NULL "
                f"WHEN {_OCCURRED} BETWEEN v.window_start AND v.window_end THEN 1 ELSE 0 END"
            ),
            _in_window,
            values=YES_NO,
            derivation="1 when the local date it took place lies in [window start, window end]; empty if it has not "
            "taken place or has no window",
        ),
        Column(
            "dosing_number",
            INT,
            "Dosing session number",
            "v.dosing_number",
            lambda r, p: r["dosing_number"],
            derivation="1, 2, 3 ... for dosing visits; empty otherwise",
        ),
        Column(
            "days_since_last_dosing",
            INT,
            "Days since the most recent earlier dosing session",
            f"({_OCCURRED} - ld.last_dose)",
            _days_since_dosing,
            unit="days",
            derivation="local date this visit took place minus the local date of the latest other dosing visit that "
            "took place on or before it; empty if none or not taken place",
        ),
        ARM,
        _date("target_date", "Target date (local)", "v.target_date", "target_date"),
        _date("window_start_date", "Window start (local)", "v.window_start", "window_start"),
        _date("window_end_date", "Window end (local)", "v.window_end", "window_end"),
        _local_date("occurred_date", "Date it took place (local)", "v.occurred_at", "occurred_at"),
    ),
    from_sql=(
        "JOIN scheduling_visit v ON v.participant_id = px.id "
        "LEFT JOIN LATERAL (SELECT max((d.occurred_at AT TIME ZONE px.tz)::date) AS last_dose FROM scheduling_visit d "
        "WHERE d.participant_id = v.participant_id AND d.kind = 'dosing' AND d.occurred_at IS NOT NULL "
        "AND d.id <> v.id AND (d.occurred_at AT TIME ZONE px.tz)::date <= (v.occurred_at AT TIME ZONE px.tz)::date) "
        "ld ON true"
    ),
    order_sql="px.participant_id, v.target_date NULLS LAST, v.id",
    filter_sql={"visit_code": "v.code"},
    changed_sql="v.updated_at",
    py_rows=_py_visits,
)

RESPONSES = Dataset(
    name="responses",
    label="Long: one row per answered (or unanswered) item of a submitted questionnaire",
    columns=(
        PARTICIPANT_ID,
        SITE,
        _visit_code("response__visit__code"),
        Column("instrument", TEXT, "Instrument code", "r.instrument_code", lambda r, p: r["response__instrument_code"]),
        Column(
            "instrument_version",
            TEXT,
            "Instrument version answered",
            "r.instrument_version",
            lambda r, p: r["response__instrument_version"],
        ),
        Column("item", TEXT, "Item code", "a.item_code", lambda r, p: r["item_code"]),
        Column(
            "value",
            INT,
            "Raw answer",
            "a.value",
            lambda r, p: r["value"],
            derivation="the option value as answered; empty when left unanswered or hidden by branching "
            "(see the codebook rows per item)",
        ),
        Column(
            "respondent",
            TEXT,
            "Who answers the instrument",
            "ad.respondent",
            lambda r, p: r["response__administration__respondent"],
            values={"self": "self-report", "clinician": "clinician"},
        ),
        Column(
            "source",
            TEXT,
            "How the answers were entered",
            "r.source",
            lambda r, p: r["response__source"],
            values={"participant_link": "participant link", "staff": "staff entry"},
        ),
        _study_day("study_day", "Study day of submission", "r.submitted_at", "response__submitted_at"),
        ARM,
        _local_date("submitted_date", "Submission date (local)", "r.submitted_at", "response__submitted_at"),
    ),
    from_sql=(
        "JOIN assessments_response r ON r.participant_id = px.id "
        "JOIN scheduling_visit v ON v.id = r.visit_id "
        "JOIN assessments_administration ad ON ad.id = r.administration_id "
        "JOIN assessments_answer a ON a.response_id = r.id"
    ),
    order_sql="px.participant_id, r.id, a.id",
    filter_sql={"instrument": "r.instrument_code", "visit_code": "v.code"},
    changed_sql="r.updated_at",
    py_rows=_py_responses,
)

SCORES = Dataset(
    name="scores",
    label="Long: one row per scale (and flag) of a submitted questionnaire",
    columns=(
        PARTICIPANT_ID,
        SITE,
        _visit_code("response__visit__code"),
        Column("instrument", TEXT, "Instrument code", "r.instrument_code", lambda r, p: r["response__instrument_code"]),
        Column(
            "instrument_version",
            TEXT,
            "Instrument version scored",
            "s.instrument_version",
            lambda r, p: r["instrument_version"],
        ),
        Column(
            "kind",
            TEXT,
            "Scale or flag",
            "s.kind",
            lambda r, p: r["kind"],
            values={"scale": "scale score", "flag": "derived flag (0/1, or a level in score_text)"},
        ),
        Column("scale", TEXT, "Scale (or flag) code", "s.code", lambda r, p: r["code"]),
        Column(
            "score",
            FLOAT,
            "Score",
            "s.value",
            lambda r, p: r["value"],
            derivation="stored value at full double precision, as computed by the scoring engine; empty when the "
            "scale could not be scored",
        ),
        Column(
            "score_text",
            TEXT,
            "Level of a text-valued flag",
            "NULLIF(s.text_value, '')",
            lambda r, p: _blank_none(r["text_value"]),
            derivation="e.g. C-SSRS risk level; empty otherwise",
        ),
        Column(
            "complete",
            INT,
            "All items needed were answered",
            "s.complete::int",
            lambda r, p: _bool01(r["complete"]),
            values=YES_NO,
        ),
        Column(
            "prorated",
            INT,
            "Score prorated for missing items",
            "s.prorated::int",
            lambda r, p: _bool01(r["prorated"]),
            values=YES_NO,
        ),
        Column("method", TEXT, "Scoring method", "NULLIF(s.method, '')", lambda r, p: _blank_none(r["method"])),
        Column(
            "scoring_version", TEXT, "Scoring engine version", "s.scoring_version", lambda r, p: r["scoring_version"]
        ),
        _study_day("study_day", "Study day of submission", "r.submitted_at", "response__submitted_at"),
        ARM,
        _local_date("submitted_date", "Submission date (local)", "r.submitted_at", "response__submitted_at"),
    ),
    from_sql=(
        "JOIN assessments_response r ON r.participant_id = px.id "
        "JOIN scheduling_visit v ON v.id = r.visit_id "
        "JOIN assessments_score s ON s.response_id = r.id"
    ),
    order_sql="px.participant_id, r.id, CASE WHEN s.kind = 'scale' THEN 0 ELSE 1 END, s.id",
    filter_sql={"instrument": "r.instrument_code", "visit_code": "v.code"},
    changed_sql="GREATEST(r.updated_at, s.computed_at)",
    py_rows=_py_scores,
)

DEVIATIONS = Dataset(
    name="deviations",
    label="One row per protocol deviation (the free-text description is never exported)",
    columns=(
        PARTICIPANT_ID,
        SITE,
        Column(
            "visit_code", TEXT, "Visit code (empty if not tied to a visit)", "v.code", lambda r, p: r["visit__code"]
        ),
        Column("deviation_type", TEXT, "Deviation type", "dv.type", lambda r, p: r["type"], values=_deviation_values()),
        Column(
            "days_outside",
            INT,
            "Days outside the window",
            "dv.days_outside",
            lambda r, p: r["days_outside"],
            unit="days",
            derivation="out of window: negative = early, positive = late (local days)",
        ),
        _study_day("recorded_study_day", "Study day it was recorded", "dv.recorded_at", "recorded_at"),
        ARM,
        _local_date("recorded_date", "Date recorded (local)", "dv.recorded_at", "recorded_at"),
    ),
    from_sql=(
        "JOIN scheduling_protocoldeviation dv ON dv.participant_id = px.id "
        "LEFT JOIN scheduling_visit v ON v.id = dv.visit_id"
    ),
    order_sql="px.participant_id, dv.recorded_at, dv.id",
    filter_sql={"visit_code": "v.code"},
    changed_sql="dv.recorded_at",
    py_rows=_py_deviations,
)

SAFETY_ALERTS = Dataset(
    name="safety_alerts",
    label="One row per safety alert raised by a questionnaire (messages and notes are not exported)",
    columns=(
        PARTICIPANT_ID,
        SITE,
        _visit_code("response__visit__code"),
        Column("instrument", TEXT, "Instrument code", "r.instrument_code", lambda r, p: r["response__instrument_code"]),
        Column("rule_code", TEXT, "Safety rule code", "al.rule_code", lambda r, p: r["rule_code"]),
        Column(
            "severity",
            TEXT,
            "Severity",
            "al.severity",
            lambda r, p: r["severity"],
            values={"low": "low", "medium": "medium", "high": "high"},
        ),
        _study_day("study_day", "Study day it was raised", "al.created_at", "created_at"),
        Column(
            "acknowledged",
            INT,
            "Acknowledged by an investigator",
            "(al.acknowledged_at IS NOT NULL)::int",
            lambda r, p: int(r["acknowledged_at"] is not None),
            values=YES_NO,
        ),
        Column(
            "hours_to_acknowledge",
            FLOAT,
            "Hours from alert to acknowledgement",
            "(extract(epoch FROM al.acknowledged_at - al.created_at)::float8 / 3600.0::float8)",
            lambda r, p: _hours(r["created_at"], r["acknowledged_at"]),
            unit="hours",
        ),
        Column(
            "escalated",
            INT,
            "Escalated for lack of acknowledgement",
            "(al.escalated_at IS NOT NULL)::int",
            lambda r, p: int(r["escalated_at"] is not None),
            values=YES_NO,
        ),
        ARM,
        _local_date("created_date", "Date raised (local)", "al.created_at", "created_at"),
    ),
    from_sql=(
        "JOIN assessments_safetyalert al ON al.participant_id = px.id "
        "JOIN assessments_response r ON r.id = al.response_id "
        "JOIN scheduling_visit v ON v.id = r.visit_id"
    ),
    order_sql="px.participant_id, al.created_at, al.id",
    filter_sql={"instrument": "r.instrument_code", "visit_code": "v.code"},
    changed_sql="GREATEST(al.created_at, al.acknowledged_at, al.escalated_at)",
    py_rows=_py_alerts,
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (PARTICIPANTS, VISITS, RESPONSES, SCORES, DEVIATIONS, SAFETY_ALERTS)}
# Filters each dataset accepts (the rest of the request parameters are refused with a 400 naming them).
ACCEPTS: dict[str, frozenset[str]] = {
    name: frozenset({"study", "site", "changed_since", *d.filter_sql}) for name, d in DATASETS.items()
}


# ----------------------------------------------------------------------------------------------------------- wide


@dataclass(frozen=True)
class WideColumn:
    """One ``<INSTRUMENT>_<code>`` column of the wide scores layout."""

    name: str
    instrument: str
    instrument_version: str
    kind: str  # "scale" | "flag"
    code: str
    type: str
    label: str
    unit: str = ""
    derivation: str = ""
    allowed: str = ""
    values: Mapping[Any, str] | None = None


def wide_columns(instruments: Sequence[Any], only: Sequence[str] | None = None) -> list[WideColumn]:
    """Columns from the instrument definitions (not from the data), so the layout is the same whatever rows exist
    and matches the codebook. ``instruments`` are parsed definitions (assessments.definitions.Instrument)."""
    cols: list[WideColumn] = []
    for inst in sorted(instruments, key=lambda i: i.code):
        if only and inst.code not in only:
            continue
        for scale in inst.scales:
            how = scale.reported_method
            if scale.items:
                how += " of items " + ", ".join(scale.items)
            if scale.scales:
                how += " of scales " + ", ".join(scale.scales)
            reversed_ = sorted(scale.reversed) + sorted(scale.reversed_scales)
            if reversed_:
                how += "; reversed: " + ", ".join(reversed_)
            cols.append(
                WideColumn(
                    name=f"{inst.code}_{scale.code}",
                    instrument=inst.code,
                    instrument_version=inst.version,
                    kind="scale",
                    code=scale.code,
                    type=FLOAT,
                    label=f"{inst.code}: {scale.label}",
                    derivation=how + ("" if scale.recommended else " (not recommended by the authors)"),
                    allowed=f"{_num(scale.range_min)}..{_num(scale.range_max)}",
                    unit="score",
                )
            )
        for flag in inst.flags:
            text = flag.rule.get("type") == "cssrs_risk"
            levels = [lv["level"] for lv in flag.rule.get("levels", [])] + (
                [flag.rule["otherwise"]] if text and "otherwise" in flag.rule else []
            )
            cols.append(
                WideColumn(
                    name=f"{inst.code}_{flag.code}",
                    instrument=inst.code,
                    instrument_version=inst.version,
                    kind="flag",
                    code=flag.code,
                    type=TEXT if text else FLOAT,
                    label=f"{inst.code}: {flag.label}",
                    derivation=f"flag rule '{flag.rule.get('type')}'",
                    allowed="|".join(levels) if text else "0|1",
                    values={lv: lv for lv in levels} if text else YES_NO,
                )
            )
    return cols


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


WIDE_INDEX = (
    PARTICIPANT_ID,
    SITE,
    _visit_code("visit_code"),
    Column(
        "study_day",
        INT,
        "Study day of the earliest submission at this visit",
        "min(" + _day_sql(_local_sql("r.submitted_at")) + ")",
        lambda r, p: None,
        unit="days",
        derivation=STUDY_DAY,
    ),
    ARM,
)


# ----------------------------------------------------------------------------------------------------------- SQL


def _px(scope: Scope) -> sql.Composable:
    """Participants in scope with their time zone, day 0 and (only when visible) arm."""
    arm_col = sql.SQL(", arm.code AS arm") if scope.with_arm else sql.SQL("")
    arm_join = (
        sql.SQL(
            " LEFT JOIN participants_allocationslot sl ON sl.participant_id = p.id"
            " LEFT JOIN participants_arm arm ON arm.id = sl.arm_id"
        )
        if scope.with_arm
        else sql.SQL("")
    )
    where = [sql.SQL("p.site_id = ANY({})").format(sql.Literal(list(scope.site_ids)))]
    if scope.study_ids is not None:
        where.append(sql.SQL("p.study_id = ANY({})").format(sql.Literal(list(scope.study_ids))))
    return sql.SQL(
        "WITH px AS (SELECT p.id, p.participant_id, s.code AS site_code, z.tz, "
        "COALESCE(ps.randomization_date, ps.enrollment_date, (p.randomized_at AT TIME ZONE z.tz)::date, "
        "(p.enrolled_at AT TIME ZONE z.tz)::date) AS day0{arm_col} "
        "FROM participants_participant p JOIN participants_site s ON s.id = p.site_id "
        "LEFT JOIN participants_contactdetails c ON c.participant_id = p.id "
        "CROSS JOIN LATERAL (SELECT COALESCE(NULLIF(c.time_zone, ''), s.time_zone) AS tz) z "
        "LEFT JOIN scheduling_participantschedule ps ON ps.participant_id = p.id{arm_join} "
        "WHERE {where}) "
    ).format(arm_col=arm_col, arm_join=arm_join, where=sql.SQL(" AND ").join(where))


def _filter_clauses(filter_sql: Mapping[str, str], changed_sql: str | None, filters: Filters) -> list[sql.Composable]:
    clauses: list[sql.Composable] = []
    if filters.instruments and "instrument" in filter_sql:
        clauses.append(sql.SQL(filter_sql["instrument"] + " = ANY({})").format(sql.Literal(list(filters.instruments))))
    if filters.visit_codes and "visit_code" in filter_sql:
        clauses.append(sql.SQL(filter_sql["visit_code"] + " = ANY({})").format(sql.Literal(list(filters.visit_codes))))
    if filters.changed_since and changed_sql:
        clauses.append(sql.SQL(changed_sql + " >= {}").format(sql.Literal(filters.changed_since)))
    return clauses


def _select_list(columns: Sequence[tuple[str, str, sql.Composable]], escape: bool) -> sql.Composable:
    parts = []
    for name, type_, expr in columns:
        if escape and type_ == TEXT:
            expr = escape_sql(expr)
        parts.append(sql.SQL("{} AS {}").format(expr, sql.Identifier(name)))
    return sql.SQL(", ").join(parts)


def select_sql(dataset: Dataset, scope: Scope, filters: Filters, *, escape: bool) -> sql.Composable:
    cols = [(c.name, c.type, c.expr) for c in dataset.visible(scope)]
    where = _filter_clauses(dataset.filter_sql, dataset.changed_sql, filters)
    return sql.SQL("{px}SELECT {cols} FROM px {from_} {where} ORDER BY {order}").format(
        px=_px(scope),
        cols=_select_list(cols, escape),
        from_=sql.SQL(dataset.from_sql),
        where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
        order=sql.SQL(dataset.order_sql),
    )


def wide_select_sql(wide: Sequence[WideColumn], scope: Scope, filters: Filters, *, escape: bool) -> sql.Composable:
    index = [c for c in WIDE_INDEX if c.role == "base" or (c.role == "arm" and scope.with_arm)]
    cols: list[tuple[str, str, sql.Composable]] = [(c.name, c.type, c.expr) for c in index]
    for w in wide:
        value = sql.SQL("NULLIF(s.text_value, '')") if w.type == TEXT else sql.SQL("s.value")
        cols.append(
            (
                w.name,
                w.type,
                sql.SQL("max({v}) FILTER (WHERE r.instrument_code = {i} AND s.kind = {k} AND s.code = {c})").format(
                    v=value, i=sql.Literal(w.instrument), k=sql.Literal(w.kind), c=sql.Literal(w.code)
                ),
            )
        )
    where = _filter_clauses(SCORES.filter_sql, None, filters)
    group = [sql.SQL("px.participant_id"), sql.SQL("px.site_code"), sql.SQL("v.id")]
    if scope.with_arm:
        group.append(sql.SQL("px.arm"))
    having = (
        sql.SQL(" HAVING max(GREATEST(r.updated_at, s.computed_at)) >= {}").format(sql.Literal(filters.changed_since))
        if filters.changed_since
        else sql.SQL("")
    )
    return sql.SQL("{px}SELECT {cols} FROM px {from_} {where} GROUP BY {group}{having} ORDER BY {order}").format(
        px=_px(scope),
        cols=_select_list(cols, escape),
        from_=sql.SQL(SCORES.from_sql),
        where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
        group=sql.SQL(", ").join(group),
        having=having,
        order=sql.SQL("px.participant_id, v.target_date NULLS LAST, v.id"),
    )


# ----------------------------------------------------------------------------------------------------------- Python


def participant_contexts(scope: Scope, *, with_dosing: bool = False) -> dict[int, PCtx]:
    """Day 0, time zone and arm per participant in scope: one query (two with dosing dates), any number of rows."""
    from participants.models import Participant
    from scheduling.models import Visit

    fields = [
        "id",
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
    for row in _scoped(Participant.objects.all(), scope, prefix="").values(*fields).iterator(chunk_size=2000):
        tz = zoneinfo.ZoneInfo(row["contact__time_zone"] or row["site__time_zone"])
        ctx = PCtx(row["participant_id"], row["site__code"], tz, None, row.get("allocation__arm__code"))
        ctx.day0 = (
            row["schedule__randomization_date"]
            or row["schedule__enrollment_date"]
            or ctx.local(row["randomized_at"])
            or ctx.local(row["enrolled_at"])
        )
        out[row["id"]] = ctx
    if with_dosing and out:
        dosing = _scoped(Visit.objects.filter(kind="dosing", occurred_at__isnull=False), scope)
        for pid, vid, occurred in dosing.values_list("participant_id", "id", "occurred_at").iterator(chunk_size=2000):
            ctx = out[pid]
            ctx.dosing_dates.append((vid, ctx.local(occurred)))
    return out


def python_rows(dataset: Dataset, scope: Scope, filters: Filters) -> Iterator[tuple]:
    """The dataset's rows in column order, computed in Python from ORM streams (any database)."""
    contexts = participant_contexts(scope, with_dosing=dataset is VISITS)
    cols = dataset.visible(scope)
    for row, participant_pk in dataset.py_rows(scope, filters):
        ctx = contexts[participant_pk]
        yield tuple(c.py(row, ctx) for c in cols)


def python_wide_rows(wide: Sequence[WideColumn], scope: Scope, filters: Filters) -> Iterator[tuple]:
    """Wide rows from the long scores stream, grouped per participant x visit (the stream is ordered that way)."""
    contexts = participant_contexts(scope)
    index = {(w.instrument, w.kind, w.code): i for i, w in enumerate(wide)}
    qs = _scores_queryset(scope, Filters(filters.instruments, filters.visit_codes, None))
    from django.db.models import F

    qs = qs.order_by(
        "response__participant__participant_id",
        F("response__visit__target_date").asc(nulls_last=True),
        "response__visit_id",
    ).values_list(
        "response__participant_id",
        "response__visit_id",
        "response__visit__code",
        "response__instrument_code",
        "kind",
        "code",
        "value",
        "text_value",
        "response__submitted_at",
        "response__updated_at",
        "computed_at",
    )
    current: tuple | None = None
    values: list[Any] = []
    first_day: int | None = None
    last_change: dt.datetime | None = None

    def emit():
        ctx = contexts[current[0]]
        if filters.changed_since and (last_change is None or last_change < filters.changed_since):
            return None
        head = [ctx.participant_id, ctx.site_code, current[2], first_day]
        if scope.with_arm:
            head.append(ctx.arm)
        return tuple(head + values)

    for pid, vid, vcode, inst, kind, code, value, text, submitted, updated, computed in qs.iterator(chunk_size=2000):
        if current is None or (pid, vid) != current[:2]:
            if current is not None and (out := emit()) is not None:
                yield out
            current, values, first_day, last_change = (pid, vid, vcode), [None] * len(wide), None, None
        ctx = contexts[pid]
        day = ctx.day(ctx.local(submitted))
        if day is not None and (first_day is None or day < first_day):
            first_day = day
        changed = max(updated, computed)
        last_change = changed if last_change is None else max(last_change, changed)
        i = index.get((inst, kind, code))
        if i is not None:
            values[i] = (text or None) if wide[i].type == TEXT else value
    if current is not None and (out := emit()) is not None:
        yield out
