"""The participants dataset: one row per participant."""

from __future__ import annotations

from exports.columns import (
    ARM,
    DATE,
    INT,
    PARTICIPANT_ID,
    SITE,
    STUDY_DAY,
    TEXT,
    Column,
    blank_none,
    date_column,
    day_sql,
    iso,
    local_date_column,
    local_sql,
)
from exports.datasets.base import Dataset, RowSource
from participants.models import Participant
from participants.selectors import participants_with_consent_version

WITHDRAWAL_LABELS = {
    "stop_contact": "Stop contact (keep follow-up data collection by records)",
    "stop_follow_up": "Stop follow-up visits",
    "stop_data_use": "Stop all further use of data",
}

PARTICIPANTS = Dataset(
    name="participants",
    label="One row per participant",
    columns=(
        PARTICIPANT_ID,
        SITE,
        Column(
            "status",
            TEXT,
            "Participant status",
            "p.status",
            lambda r, p: r["status"],
            values={v: v.replace("_", " ") for v in Participant.Status.values},
        ),
        Column(
            "stratum",
            TEXT,
            "Randomization stratum",
            "NULLIF(p.stratum, '')",
            lambda r, p: blank_none(r["stratum"]),
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
            day_sql(local_sql("p.randomized_at")),
            lambda r, p: p.day(p.local(r["randomized_at"])),
            unit="days",
            derivation=STUDY_DAY,
        ),
        Column(
            "withdrawal_level",
            TEXT,
            "Withdrawal level",
            "NULLIF(p.withdrawal_level, '')",
            lambda r, p: blank_none(r["withdrawal_level"]),
            values=WITHDRAWAL_LABELS,
            derivation="empty when not withdrawn",
        ),
        Column(
            "withdrawal_study_day",
            INT,
            "Study day of withdrawal",
            day_sql("p.withdrawal_date"),
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
            lambda r, p: iso(p.day0),
            role="date",
            derivation="ISO local calendar date; only with ?dates=iso",
        ),
        local_date_column("enrolled_date", "Enrollment date (local)", "p.enrolled_at", "enrolled_at"),
        local_date_column("randomized_date", "Randomization date (local)", "p.randomized_at", "randomized_at"),
        date_column("withdrawal_date", "Withdrawal date (local)", "p.withdrawal_date", "withdrawal_date"),
    ),
    from_sql=(
        # The latest signed consent of each participant, grouped once.
        "JOIN participants_participant p ON p.id = px.id "
        "LEFT JOIN (SELECT DISTINCT ON (cr.participant_id) cr.participant_id, d.version "
        "FROM participants_consentrecord cr JOIN participants_consentdocument d ON d.id = cr.document_id "
        "ORDER BY cr.participant_id, cr.id DESC) cv ON cv.participant_id = p.id"
    ),
    order_sql="px.participant_id",
    filter_sql={},
    changed_sql="p.updated_at",
    source=RowSource(
        queryset=participants_with_consent_version,
        fields=(
            "id",
            "status",
            "stratum",
            "consent_version",
            "randomized_at",
            "enrolled_at",
            "withdrawal_level",
            "withdrawal_date",
        ),
        order_by=("participant_id",),
        participant="id",
        changed=("updated_at",),
    ),
)
