"""The blinding_guesses dataset: one row per treatment guess (participant, lead therapist or independent rater)
after a dosing session or at the primary endpoint. De-identified: pseudonymous participant id, study days, no staff
names; the arm only where exports show arms (``participants.access.arm_visible_in_export``)."""

from __future__ import annotations

from exports.columns import (
    ARM,
    INT,
    PARTICIPANT_ID,
    SITE,
    TEXT,
    TIMEPOINT,
    YES_NO,
    Column,
    local_date_column,
    study_day_column,
    visit_code_column,
)
from exports.datasets.base import VISIT_ROWS, Dataset, RowSource
from safety.guess_selectors import guesses_at_sites

RESPONDENTS = {
    "participant": "Participant",
    "lead_therapist": "Lead therapist",
    "independent_rater": "Independent rater",
}

BLINDING_GUESSES = Dataset(
    name="blinding_guesses",
    label="One row per guess of the participant's arm (blinding assessment) after a dosing session or at the endpoint",
    columns=(
        PARTICIPANT_ID,
        SITE,
        visit_code_column("visit__code"),
        TIMEPOINT,
        Column(
            "dosing_number",
            INT,
            "Dosing session number (empty at the endpoint)",
            "v.dosing_number",
            lambda r, p: r["visit__dosing_number"],
            role="arm",
            derivation="present only with the arm column (which session a visit is differs by arm in a "
            "delayed-treatment design)",
        ),
        Column(
            "respondent",
            TEXT,
            "Who guessed",
            "g.respondent",
            lambda r, p: r["respondent"],
            values=RESPONDENTS,
        ),
        Column(
            "guess",
            TEXT,
            "Arm guessed",
            "g.guess",
            lambda r, p: r["guess"],
            derivation="an arm code of the study, or dont_know",
        ),
        Column(
            "confidence",
            INT,
            "Confidence in the guess",
            "g.confidence",
            lambda r, p: r["confidence"],
            unit="0-100",
            derivation="0 = a pure guess, 50 = fairly sure, 100 = certain",
        ),
        study_day_column("study_day", "Study day the guess was recorded", "g.recorded_at", "recorded_at"),
        Column(
            "corrected",
            INT,
            "Corrected after entry (the audit trail keeps the earlier value)",
            "(g.corrected_at IS NOT NULL)::int",
            lambda r, p: int(r["corrected_at"] is not None),
            values=YES_NO,
        ),
        ARM,
        local_date_column("recorded_date", "Date recorded (local)", "g.recorded_at", "recorded_at"),
    ),
    from_sql=("JOIN safety_treatmentguess g ON g.participant_id = px.id JOIN scheduling_visit v ON v.id = g.visit_id"),
    order_sql="px.participant_id, g.recorded_at, g.id",
    filter_sql={"visit_code": "v.code"},
    changed_sql="GREATEST(g.recorded_at, g.corrected_at)",
    source=RowSource(
        queryset=guesses_at_sites,
        fields=(
            "participant_id",
            "visit__code",
            "visit__dosing_number",
            "respondent",
            "guess",
            "confidence",
            "recorded_at",
            "corrected_at",
        ),
        order_by=("participant__participant_id", "recorded_at", "id"),
        participant="participant_id",
        visit_code="visit__code",
        changed=("recorded_at", "corrected_at"),
    ),
    visit_rows=VISIT_ROWS,
)
