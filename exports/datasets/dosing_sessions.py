"""The dosing_sessions dataset: one row per dosing-session record. Doses (only with the arm: a dose can reveal the
allocation), timing as minutes and study days, counts of
who was present and of vital signs; never the kit identifier (a kit number can lead back to the allocation list),
nobody's name (present staff and others are counted, not named) and no free text (the reason for missing
timepoints is exported as given or not)."""

from __future__ import annotations

from typing import Any

from exports.columns import (
    ARM,
    FLOAT,
    INT,
    PARTICIPANT_ID,
    SITE,
    TIMEPOINT,
    YES_NO,
    Column,
    hours_between,
    local_date_column,
    study_day_column,
    visit_code_column,
)
from exports.datasets.base import VISIT_ROWS, Dataset, RowSource
from safety.selectors import dosing_sessions_at_sites

# As per_participant's dose<N>_mg: in a placebo-controlled study a dose can reveal the allocation.
ARM_ONLY = "present only with the arm, which a dose can reveal in a placebo-controlled study"


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _minutes(start: Any, end: Any) -> float | None:
    hours = hours_between(start, end)
    return None if hours is None else hours * 60.0


DOSING_SESSIONS = Dataset(
    name="dosing_sessions",
    label="One row per dosing session record (no kit identifier, no names, no free text)",
    columns=(
        PARTICIPANT_ID,
        SITE,
        visit_code_column("visit__code"),
        TIMEPOINT,
        Column(
            "dosing_number",
            INT,
            "Dosing session number within the participant's arm (1 = first)",
            "v.dosing_number",
            lambda r, p: r["visit__dosing_number"],
            role="arm",
            derivation="present only with the arm column (which session a visit is differs by arm in a "
            "delayed-treatment design)",
        ),
        study_day_column("study_day", "Study day the session started", "ds.started_at", "started_at"),
        Column(
            "initial_dose_mg",
            FLOAT,
            "Initial dose",
            "ds.initial_dose_mg::float8",
            lambda r, p: _float(r["initial_dose_mg"]),
            unit="mg",
            role="arm",
            derivation=ARM_ONLY,
        ),
        Column(
            "supplemental_dose_mg",
            FLOAT,
            "Supplemental dose (empty: none given)",
            "ds.supplemental_dose_mg::float8",
            lambda r, p: _float(r["supplemental_dose_mg"]),
            unit="mg",
            role="arm",
            derivation=ARM_ONLY,
        ),
        Column(
            "supplemental_dose_minutes",
            FLOAT,
            "Minutes from the initial to the supplemental dose",
            "(extract(epoch FROM ds.supplemental_dose_at - ds.initial_dose_at)::float8 / 60.0::float8)",
            lambda r, p: _minutes(r["initial_dose_at"], r["supplemental_dose_at"]),
            unit="minutes",
            role="arm",
            derivation=ARM_ONLY,
        ),
        Column(
            "initial_dose_minutes",
            FLOAT,
            "Minutes from the session's start to the initial dose",
            "(extract(epoch FROM ds.initial_dose_at - ds.started_at)::float8 / 60.0::float8)",
            lambda r, p: _minutes(r["started_at"], r["initial_dose_at"]),
            unit="minutes",
        ),
        Column(
            "session_hours",
            FLOAT,
            "Hours from the session's start to its end",
            "(extract(epoch FROM ds.ended_at - ds.started_at)::float8 / 3600.0::float8)",
            lambda r, p: hours_between(r["started_at"], r["ended_at"]),
            unit="hours",
        ),
        Column(
            "present_staff_count",
            INT,
            "Staff with an account recorded as present",
            "COALESCE(pst.n, 0)::int",
            lambda r, p: r["present_staff_count"],
        ),
        Column(
            "present_others_count",
            INT,
            "Other people recorded as present (by name and role in the record; counted here)",
            "jsonb_array_length(ds.present_others)",
            lambda r, p: len(r["present_others"] or []),
        ),
        Column(
            "vital_sign_count",
            INT,
            "Vital-sign rows recorded (see the vital_signs dataset)",
            "COALESCE(vsc.n, 0)::int",
            lambda r, p: r["vital_sign_count"],
        ),
        Column(
            "closed",
            INT,
            "Session record closed",
            "(ds.closed_at IS NOT NULL)::int",
            lambda r, p: int(r["closed_at"] is not None),
            values=YES_NO,
        ),
        Column(
            "missing_timepoints_reason_given",
            INT,
            "Closed with declared vital-sign timepoints missing (a reason was given; its text is not exported)",
            "(ds.missing_timepoints_reason <> '')::int",
            lambda r, p: int(bool(r["missing_timepoints_reason"])),
            values=YES_NO,
        ),
        ARM,
        local_date_column("session_date", "Date the session started (local)", "ds.started_at", "started_at"),
    ),
    from_sql=(
        "JOIN safety_dosingsession ds ON ds.participant_id = px.id JOIN scheduling_visit v ON v.id = ds.visit_id "
        # Each session's present staff and vital signs, counted once.
        "LEFT JOIN (SELECT ps.dosingsession_id, count(*) AS n FROM safety_dosingsession_present_staff ps "
        "GROUP BY ps.dosingsession_id) pst ON pst.dosingsession_id = ds.id "
        "LEFT JOIN (SELECT vc.session_id, count(*) AS n FROM safety_vitalsign vc GROUP BY vc.session_id) vsc "
        "ON vsc.session_id = ds.id"
    ),
    order_sql="px.participant_id, ds.started_at, ds.id",
    filter_sql={"visit_code": "v.code"},
    # No ?changed_since: a correction changes a session without a timestamp of its own (the audit trail has it).
    changed_sql="",
    source=RowSource(
        queryset=lambda sites, studies: dosing_sessions_at_sites(sites, studies, with_counts=True),
        fields=(
            "participant_id",
            "visit__code",
            "visit__dosing_number",
            "started_at",
            "ended_at",
            "initial_dose_mg",
            "initial_dose_at",
            "supplemental_dose_mg",
            "supplemental_dose_at",
            "present_staff_count",
            "present_others",
            "vital_sign_count",
            "closed_at",
            "missing_timepoints_reason",
        ),
        order_by=("participant__participant_id", "started_at", "id"),
        participant="participant_id",
        visit_code="visit__code",
    ),
    visit_rows=VISIT_ROWS,
)
