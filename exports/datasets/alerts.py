"""The safety_alerts dataset: one row per safety alert a questionnaire raised (never its messages or notes)."""

from __future__ import annotations

from assessments.selectors import questionnaire_alerts_at_sites
from exports.columns import (
    ARM,
    FLOAT,
    INT,
    PARTICIPANT_ID,
    SITE,
    TEXT,
    TIMEPOINT,
    YES_NO,
    Column,
    hours_between,
    local_date_column,
    study_day_column,
    visit_code_column,
)
from exports.datasets.base import VISIT_ROWS, Dataset, RowSource

SAFETY_ALERTS = Dataset(
    name="safety_alerts",
    label="One row per safety alert raised by a questionnaire (messages and notes are not exported)",
    columns=(
        PARTICIPANT_ID,
        SITE,
        visit_code_column("response__visit__code"),
        TIMEPOINT,
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
        study_day_column("study_day", "Study day it was raised", "al.created_at", "created_at"),
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
            lambda r, p: hours_between(r["created_at"], r["acknowledged_at"]),
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
        local_date_column("created_date", "Date raised (local)", "al.created_at", "created_at"),
    ),
    from_sql=(
        "JOIN assessments_safetyalert al ON al.participant_id = px.id AND al.source = 'questionnaire' "
        "JOIN assessments_response r ON r.id = al.response_id "
        "JOIN scheduling_visit v ON v.id = r.visit_id"
    ),
    order_sql="px.participant_id, al.created_at, al.id",
    filter_sql={"instrument": "r.instrument_code", "visit_code": "v.code"},
    changed_sql="GREATEST(al.created_at, al.acknowledged_at, al.escalated_at)",
    source=RowSource(
        queryset=questionnaire_alerts_at_sites,
        fields=(
            "participant_id",
            "response__visit__code",
            "response__instrument_code",
            "rule_code",
            "severity",
            "created_at",
            "acknowledged_at",
            "escalated_at",
        ),
        order_by=("participant__participant_id", "created_at", "id"),
        participant="participant_id",
        instrument="response__instrument_code",
        visit_code="response__visit__code",
        changed=("created_at", "acknowledged_at", "escalated_at"),
    ),
    visit_rows=VISIT_ROWS,
)
