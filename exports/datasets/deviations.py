"""The deviations dataset: one row per protocol deviation (never its free-text description)."""

from __future__ import annotations

from exports.columns import (
    ARM,
    INT,
    PARTICIPANT_ID,
    SITE,
    TEXT,
    TIMEPOINT,
    Column,
    local_date_column,
    study_day_column,
    visit_code_column,
)
from exports.datasets.base import MAYBE_VISIT, Dataset, RowSource
from scheduling.models import ProtocolDeviation
from scheduling.selectors import deviations_at_sites

DEVIATIONS = Dataset(
    name="deviations",
    label="One row per protocol deviation (the free-text description is never exported)",
    columns=(
        PARTICIPANT_ID,
        SITE,
        visit_code_column("visit__code", "Visit code (empty if not tied to a visit)"),
        TIMEPOINT,
        Column(
            "deviation_type",
            TEXT,
            "Deviation type",
            "dv.type",
            lambda r, p: r["type"],
            values={v: v.replace("_", " ") for v in ProtocolDeviation.Type.values},
        ),
        Column(
            "days_outside",
            INT,
            "Days outside the window",
            "dv.days_outside",
            lambda r, p: r["days_outside"],
            unit="days",
            derivation="out of window: negative = early, positive = late (local days)",
        ),
        study_day_column("recorded_study_day", "Study day it was recorded", "dv.recorded_at", "recorded_at"),
        ARM,
        local_date_column("recorded_date", "Date recorded (local)", "dv.recorded_at", "recorded_at"),
    ),
    from_sql=(
        "JOIN scheduling_protocoldeviation dv ON dv.participant_id = px.id "
        "LEFT JOIN scheduling_visit v ON v.id = dv.visit_id"
    ),
    order_sql="px.participant_id, dv.recorded_at, dv.id",
    filter_sql={"visit_code": "v.code"},
    changed_sql="dv.recorded_at",
    source=RowSource(
        queryset=deviations_at_sites,
        fields=("participant_id", "visit__code", "type", "days_outside", "recorded_at"),
        order_by=("participant__participant_id", "recorded_at", "id"),
        participant="participant_id",
        visit_code="visit__code",
        changed=("recorded_at",),
    ),
    visit_rows=MAYBE_VISIT,
)
