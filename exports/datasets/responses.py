"""The responses dataset: long, one row per item of a submitted questionnaire (the raw answers)."""

from __future__ import annotations

from assessments.selectors import answers_at_sites
from exports.columns import (
    ARM,
    INT,
    PARTICIPANT_ID,
    SITE,
    STAFF_IDS,
    TEXT,
    TIMEPOINT,
    TREATING_DYAD,
    Column,
    local_date_column,
    study_day_column,
    visit_code_column,
)
from exports.datasets.base import VISIT_ROWS, Dataset, RowSource

RESPONSES = Dataset(
    name="responses",
    label="Long: one row per answered (or unanswered) item of a submitted questionnaire",
    columns=(
        PARTICIPANT_ID,
        SITE,
        visit_code_column("response__visit__code"),
        TIMEPOINT,
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
        study_day_column("study_day", "Study day of submission", "r.submitted_at", "response__submitted_at"),
        Column(
            "rater_id",
            TEXT,
            "Pseudonymous id of the rater",
            "CASE WHEN ad.respondent = 'clinician' THEN px.staff ->> ('R:' || px.study_id || ':' || r.entered_by_id) END",
            lambda r, p: (
                p.staff.rater(p.study_id, r["response__entered_by_id"])
                if r["response__administration__respondent"] == "clinician"
                else None
            ),
            derivation="R-<10 hex>: the member of staff who entered a clinician-rated questionnaire (empty for "
            "self-reports); " + STAFF_IDS,
        ),
        TREATING_DYAD,
        ARM,
        local_date_column("submitted_date", "Submission date (local)", "r.submitted_at", "response__submitted_at"),
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
    source=RowSource(
        queryset=answers_at_sites,
        fields=(
            "item_code",
            "value",
            "response__participant_id",
            "response__visit__code",
            "response__instrument_code",
            "response__instrument_version",
            "response__administration__respondent",
            "response__source",
            "response__submitted_at",
            "response__entered_by_id",
        ),
        order_by=("response__participant__participant_id", "response_id", "id"),
        participant="response__participant_id",
        instrument="response__instrument_code",
        visit_code="response__visit__code",
        changed=("response__updated_at",),
    ),
    needs_staff=True,
    visit_rows=VISIT_ROWS,
)
