"""The vital_signs dataset: one row per vital-signs measurement of a dosing session, timed in minutes from the
session's initial dose and by study day. Never the free-text note (it may name people) nor who recorded it."""

from __future__ import annotations

from typing import Any

from exports.columns import (
    ARM,
    FLOAT,
    INT,
    PARTICIPANT_ID,
    SITE,
    TEXT,
    TIMEPOINT,
    Column,
    hours_between,
    local_date_column,
    study_day_column,
    visit_code_column,
)
from exports.datasets.base import VISIT_ROWS, Dataset, RowSource
from safety.selectors import vital_signs_at_sites


def _minutes(start: Any, end: Any) -> float | None:
    hours = hours_between(start, end)
    return None if hours is None else hours * 60.0


def _measure(name: str, label: str, kind: str = INT, unit: str = "") -> Column:
    sql = f"vs.{name}::float8" if kind == FLOAT else f"vs.{name}::int"
    if kind == FLOAT:
        return Column(name, kind, label, sql, lambda r, p: None if r[name] is None else float(r[name]), unit=unit)
    return Column(name, kind, label, sql, lambda r, p: r[name], unit=unit)


VITAL_SIGNS = Dataset(
    name="vital_signs",
    label="One row per vital-signs measurement of a dosing session (no notes, no names)",
    columns=(
        PARTICIPANT_ID,
        SITE,
        visit_code_column("session__visit__code", "Visit code of the dosing session"),
        TIMEPOINT,
        Column(
            "timepoint_code",
            TEXT,
            "Declared timepoint (the protocol's dosing_session.vital_sign_timepoints; empty: unscheduled)",
            "vs.timepoint_code",
            lambda r, p: r["timepoint_code"],
        ),
        Column(
            "minutes_from_initial_dose",
            FLOAT,
            "Minutes from the session's initial dose to the measurement (negative: before it)",
            "(extract(epoch FROM vs.measured_at - ds.initial_dose_at)::float8 / 60.0::float8)",
            lambda r, p: _minutes(r["session__initial_dose_at"], r["measured_at"]),
            unit="minutes",
        ),
        study_day_column("study_day", "Study day of the measurement", "vs.measured_at", "measured_at"),
        _measure("systolic_bp", "Systolic blood pressure", unit="mmHg"),
        _measure("diastolic_bp", "Diastolic blood pressure", unit="mmHg"),
        _measure("heart_rate", "Heart rate", unit="beats per minute"),
        _measure("temperature_c", "Body temperature", FLOAT, unit="degrees Celsius"),
        ARM,
        local_date_column("measured_date", "Date measured (local)", "vs.measured_at", "measured_at"),
    ),
    from_sql=(
        "JOIN safety_dosingsession ds ON ds.participant_id = px.id "
        "JOIN safety_vitalsign vs ON vs.session_id = ds.id "
        "JOIN scheduling_visit v ON v.id = ds.visit_id"
    ),
    order_sql="px.participant_id, vs.measured_at, vs.id",
    filter_sql={"visit_code": "v.code"},
    # No ?changed_since: a correction changes a row without a timestamp of its own (the audit trail has it).
    changed_sql="",
    source=RowSource(
        queryset=vital_signs_at_sites,
        fields=(
            "session__participant_id",
            "session__visit__code",
            "session__initial_dose_at",
            "timepoint_code",
            "measured_at",
            "systolic_bp",
            "diastolic_bp",
            "heart_rate",
            "temperature_c",
        ),
        order_by=("session__participant__participant_id", "measured_at", "id"),
        participant="session__participant_id",
        visit_code="session__visit__code",
    ),
    visit_rows=VISIT_ROWS,
)
