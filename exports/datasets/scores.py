"""The scores dataset: long, one row per scale (and flag) of a submitted questionnaire. The wide layout
(exports.wide) pivots the same rows."""

from __future__ import annotations

from django.db.models import Case, IntegerField, Value, When

from assessments.models import Score
from assessments.selectors import scores_at_sites
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
    blank_none,
    bool01,
    local_date_column,
    study_day_column,
    visit_code_column,
)
from exports.datasets.base import VISIT_ROWS, Dataset, RowSource

# Scales before flags within a response, as the SQL path orders them.
_SCALES_FIRST = Case(When(kind=Score.Kind.SCALE, then=Value(0)), default=Value(1), output_field=IntegerField())

SCORES = Dataset(
    name="scores",
    label="Long: one row per scale (and flag) of a submitted questionnaire",
    columns=(
        PARTICIPANT_ID,
        SITE,
        visit_code_column("response__visit__code"),
        TIMEPOINT,
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
            lambda r, p: blank_none(r["text_value"]),
            derivation="e.g. C-SSRS risk level; empty otherwise",
        ),
        Column(
            "complete",
            INT,
            "All items needed were answered",
            "s.complete::int",
            lambda r, p: bool01(r["complete"]),
            values=YES_NO,
        ),
        Column(
            "prorated",
            INT,
            "Score prorated for missing items",
            "s.prorated::int",
            lambda r, p: bool01(r["prorated"]),
            values=YES_NO,
        ),
        Column("method", TEXT, "Scoring method", "NULLIF(s.method, '')", lambda r, p: blank_none(r["method"])),
        Column(
            "scoring_version", TEXT, "Scoring engine version", "s.scoring_version", lambda r, p: r["scoring_version"]
        ),
        study_day_column("study_day", "Study day of submission", "r.submitted_at", "response__submitted_at"),
        ARM,
        local_date_column("submitted_date", "Submission date (local)", "r.submitted_at", "response__submitted_at"),
    ),
    from_sql=(
        "JOIN assessments_response r ON r.participant_id = px.id "
        "JOIN scheduling_visit v ON v.id = r.visit_id "
        "JOIN assessments_score s ON s.response_id = r.id"
    ),
    order_sql="px.participant_id, r.id, CASE WHEN s.kind = 'scale' THEN 0 ELSE 1 END, s.id",
    filter_sql={"instrument": "r.instrument_code", "visit_code": "v.code"},
    changed_sql="GREATEST(r.updated_at, s.computed_at)",
    source=RowSource(
        queryset=scores_at_sites,
        fields=(
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
        ),
        order_by=("response__participant__participant_id", "response_id", _SCALES_FIRST.asc(), "id"),
        participant="response__participant_id",
        instrument="response__instrument_code",
        visit_code="response__visit__code",
        changed=("response__updated_at", "computed_at"),
    ),
    visit_rows=VISIT_ROWS,
)
