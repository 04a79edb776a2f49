"""The adverse_events dataset: one row per adverse event, with its investigator reviews and follow-ups as columns.

De-identified like every dataset (exports.columns): the verbatim term is free text written by staff ("chest pain at
her sister's wedding") and may name or point at a person, so it is never exported, like a deviation's description;
the coded term (the site's MedDRA code and its preferred term) is a dictionary entry and is. Times are study days;
calendar dates only with ``?dates=iso``; the arm only where exports already show it. A caller who is also an
independent rater at a site gets no row of a participant there whose study hides safety data from raters.

Corrections change the event's row without a time of their own (the audit trail keeps them), so this dataset takes
no ``?changed_since``: take it whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import sql

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
    PCtx,
    Scope,
    blank_none,
    bool01,
    hours_between,
    local_date_column,
    study_day_column,
    visit_code_column,
)
from exports.datasets.base import ANY_VISIT, Dataset, RowSource
from safety.models import SERIOUSNESS_CRITERIA, AdverseEvent, Relatedness
from safety.selectors import adverse_events_at_sites

_RELATEDNESS = {v: v.replace("_", " ") for v in Relatedness.values}
_CRITERIA_LABELS = {
    "serious_death": "Serious: resulted in death",
    "serious_life_threatening": "Serious: life-threatening",
    "serious_hospitalisation": "Serious: hospitalisation or its prolongation",
    "serious_disability": "Serious: persistent or significant disability",
    "serious_congenital_anomaly": "Serious: congenital anomaly",
    "serious_important_medical_event": "Serious: important medical event",
}
VERBATIM_NOT_EXPORTED = (
    "the site's coded (MedDRA) term as entered; the verbatim term is free text that may identify a person and is "
    "never exported"
)


def _categories(r: Mapping[str, Any], p: PCtx) -> str | None:
    return "|".join(sorted(str(c) for c in r["aesi_categories"] or [])) or None


def _criterion(name: str) -> Column:
    return Column(
        name,
        INT,
        _CRITERIA_LABELS[name],
        f"ae.{name}::int",
        lambda r, p: bool01(r[name]),
        values=YES_NO,
    )


def _hidden_sql(scope: Scope) -> sql.Composable | None:
    """Leave out the events a rater at one of the caller's sites may not see (as safety.selectors does)."""
    if not scope.rater_site_ids:
        return None
    return sql.SQL("NOT (pp.site_id = ANY({}) AND COALESCE(st.safety_hidden_from_raters, st.blinded))").format(
        sql.Literal(list(scope.rater_site_ids))
    )


def _events(scope: Scope) -> Any:
    return adverse_events_at_sites(scope.site_ids, scope.study_ids, rater_sites=scope.rater_site_ids)


ADVERSE_EVENTS = Dataset(
    name="adverse_events",
    label="One row per adverse event (coded term only: the verbatim term is free text and never exported)",
    columns=(
        PARTICIPANT_ID,
        SITE,
        Column(
            "ae_id",
            INT,
            "Adverse event number",
            "ae.id",
            lambda r, p: r["id"],
            derivation="the event's record number: stable across exports, says nothing about the participant",
        ),
        visit_code_column("visit__code", "Visit during or after which it began (empty if not tied to a visit)"),
        TIMEPOINT,
        Column(
            "coded_term_code",
            TEXT,
            "Coded term code (MedDRA, as the site coded it)",
            "NULLIF(ae.coded_term_code, '')",
            lambda r, p: blank_none(r["coded_term_code"]),
            derivation=VERBATIM_NOT_EXPORTED,
        ),
        Column(
            "coded_term",
            TEXT,
            "Coded term (MedDRA preferred term, as the site coded it)",
            "NULLIF(ae.coded_term_text, '')",
            lambda r, p: blank_none(r["coded_term_text"]),
            derivation=VERBATIM_NOT_EXPORTED,
        ),
        study_day_column("onset_study_day", "Study day of onset", "ae.onset_at", "onset_at"),
        study_day_column(
            "resolved_study_day", "Study day of resolution (empty if not resolved)", "ae.resolved_at", "resolved_at"
        ),
        Column(
            "severity_grade",
            INT,
            "Severity grade (CTCAE)",
            "ae.severity_grade",
            lambda r, p: r["severity_grade"],
            values={1: "Mild", 2: "Moderate", 3: "Severe", 4: "Life-threatening", 5: "Death"},
        ),
        Column(
            "serious",
            INT,
            "Serious adverse event (any seriousness criterion)",
            "ae.serious::int",
            lambda r, p: bool01(r["serious"]),
            values=YES_NO,
        ),
        *(_criterion(name) for name in SERIOUSNESS_CRITERIA),
        Column(
            "aesi",
            INT,
            "Adverse event of special interest",
            "(jsonb_array_length(ae.aesi_categories) > 0)::int",
            lambda r, p: int(bool(r["aesi_categories"])),
            values=YES_NO,
        ),
        Column(
            "aesi_categories",
            TEXT,
            "AESI categories (codes of the study's AESI list)",
            "NULLIF(array_to_string(ARRAY(SELECT jsonb_array_elements_text(ae.aesi_categories) ORDER BY 1), '|'), '')",
            _categories,
            derivation="category codes in alphabetical order, separated by |; empty when not of special interest",
        ),
        Column(
            "relatedness_drug",
            TEXT,
            "Relatedness to the study drug (as recorded)",
            "ae.relatedness_drug",
            lambda r, p: r["relatedness_drug"],
            values=_RELATEDNESS,
        ),
        Column(
            "relatedness_therapy",
            TEXT,
            "Relatedness to the therapy (as recorded)",
            "ae.relatedness_therapy",
            lambda r, p: r["relatedness_therapy"],
            values=_RELATEDNESS,
        ),
        Column(
            "expectedness",
            TEXT,
            "Expectedness",
            "ae.expectedness",
            lambda r, p: r["expectedness"],
            values={v: v for v in AdverseEvent.Expectedness.values},
        ),
        Column(
            "action_taken",
            TEXT,
            "Action taken with the study drug (CDISC AEACN)",
            "ae.action_taken",
            lambda r, p: r["action_taken"],
            values={v: v.replace("_", " ") for v in AdverseEvent.ActionTaken.values},
        ),
        Column(
            "outcome",
            TEXT,
            "Outcome (CDISC AEOUT; the latest a follow-up set)",
            "ae.outcome",
            lambda r, p: r["outcome"],
            values={v: v.replace("_", " ") for v in AdverseEvent.Outcome.values},
        ),
        study_day_column("recorded_study_day", "Study day it was recorded", "ae.recorded_at", "recorded_at"),
        Column(
            "reviewed",
            INT,
            "Reviewed by an investigator",
            "(ae.reviewed_at IS NOT NULL)::int",
            lambda r, p: int(r["reviewed_at"] is not None),
            values=YES_NO,
        ),
        study_day_column(
            "reviewed_study_day", "Study day of the first investigator review", "ae.reviewed_at", "reviewed_at"
        ),
        Column(
            "hours_to_review",
            FLOAT,
            "Hours from the start of the reporting clock to the first review",
            "(extract(epoch FROM ae.reviewed_at - ae.alert_started_at)::float8 / 3600.0::float8)",
            lambda r, p: hours_between(r["alert_started_at"], r["reviewed_at"]),
            unit="hours",
            derivation="empty for events that started no clock (neither serious nor of special interest) or are not "
            "reviewed",
        ),
        Column(
            "review_count",
            INT,
            "Number of investigator reviews",
            "COALESCE(lr.review_count, 0)::int",
            lambda r, p: r["review_count"],
        ),
        Column(
            "latest_causality_drug",
            TEXT,
            "Causality to the study drug in the latest investigator review",
            "lr.causality_drug",
            lambda r, p: r["latest_causality_drug"],
            values=_RELATEDNESS,
            derivation="empty if not reviewed",
        ),
        Column(
            "latest_causality_therapy",
            TEXT,
            "Causality to the therapy in the latest investigator review",
            "lr.causality_therapy",
            lambda r, p: r["latest_causality_therapy"],
            values=_RELATEDNESS,
            derivation="empty if not reviewed",
        ),
        Column(
            "follow_up_count",
            INT,
            "Number of follow-up entries (their notes are free text and never exported)",
            "COALESCE(fu.follow_up_count, 0)::int",
            lambda r, p: r["follow_up_count"],
        ),
        ARM,
        local_date_column("onset_date", "Date of onset (local)", "ae.onset_at", "onset_at"),
        local_date_column("resolved_date", "Date of resolution (local)", "ae.resolved_at", "resolved_at"),
        local_date_column("reviewed_date", "Date of the first review (local)", "ae.reviewed_at", "reviewed_at"),
    ),
    from_sql=(
        "JOIN safety_adverseevent ae ON ae.participant_id = px.id "
        "JOIN participants_participant pp ON pp.id = px.id "
        "JOIN participants_study st ON st.id = pp.study_id "
        "LEFT JOIN scheduling_visit v ON v.id = ae.visit_id "
        # Each event's reviews (their number, the latest's causality) and follow-ups, grouped once.
        "LEFT JOIN (SELECT rv.event_id, count(*) AS review_count, "
        "(array_agg(rv.causality_drug ORDER BY rv.reviewed_at DESC, rv.id DESC))[1] AS causality_drug, "
        "(array_agg(rv.causality_therapy ORDER BY rv.reviewed_at DESC, rv.id DESC))[1] AS causality_therapy "
        "FROM safety_adverseeventreview rv GROUP BY rv.event_id) lr ON lr.event_id = ae.id "
        "LEFT JOIN (SELECT f.event_id, count(*) AS follow_up_count FROM safety_adverseeventfollowup f "
        "GROUP BY f.event_id) fu ON fu.event_id = ae.id"
    ),
    order_sql="px.participant_id, ae.onset_at, ae.id",
    filter_sql={"visit_code": "v.code"},
    changed_sql="",
    hidden_sql=_hidden_sql,
    source=RowSource(
        queryset=adverse_events_at_sites,
        blinded_queryset=_events,
        fields=(
            "id",
            "participant_id",
            "visit__code",
            "coded_term_code",
            "coded_term_text",
            "onset_at",
            "resolved_at",
            "severity_grade",
            "serious",
            *SERIOUSNESS_CRITERIA,
            "aesi_categories",
            "relatedness_drug",
            "relatedness_therapy",
            "expectedness",
            "action_taken",
            "outcome",
            "recorded_at",
            "alert_started_at",
            "reviewed_at",
            "review_count",
            "latest_causality_drug",
            "latest_causality_therapy",
            "follow_up_count",
        ),
        order_by=("participant__participant_id", "onset_at", "id"),
        participant="participant_id",
        visit_code="visit__code",
    ),
    visit_rows=ANY_VISIT,
)
