"""The visits dataset: one row per visit, planned or not, with its window and dosing sequence in study days."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import F

from exports.columns import (
    ARM,
    INT,
    PARTICIPANT_ID,
    SITE,
    TEXT,
    TIMEPOINT,
    VISIT_STAFF_JOIN,
    YES_NO,
    Column,
    PCtx,
    bool01,
    date_column,
    date_study_day_column,
    local_date_column,
    local_sql,
    study_day_column,
    visit_code_column,
    visit_dyad_column,
)
from exports.datasets.base import VISIT_ROWS, Dataset, RowSource
from scheduling.models import Visit
from scheduling.protocol import VisitKind
from scheduling.selectors import visits_at_sites


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


_OCCURRED = local_sql("v.occurred_at")

VISITS = Dataset(
    name="visits",
    label="One row per visit (planned, scheduled, completed, missed or cancelled)",
    columns=(
        PARTICIPANT_ID,
        SITE,
        visit_code_column("code"),
        TIMEPOINT,
        Column(
            "visit_kind",
            TEXT,
            "Visit kind",
            "v.kind",
            lambda r, p: r["kind"],
            values={k.value: k.value.replace("_", " ") for k in VisitKind},
            derivation="blinded exports: the kind every arm's visit of the timepoint has, empty if they differ",
            blinded_sql="tp.kind",
            blinded_py=lambda r, p: r.get("_tp_kind"),
        ),
        Column(
            "unscheduled",
            INT,
            "Added outside the protocol plan",
            "v.unscheduled::int",
            lambda r, p: bool01(r["unscheduled"]),
            values=YES_NO,
        ),
        Column(
            "status",
            TEXT,
            "Visit status",
            "v.status",
            lambda r, p: r["status"],
            values={v: v for v in Visit.Status.values},
        ),
        date_study_day_column("target_study_day", "Target study day", "v.target_date", "target_date"),
        date_study_day_column(
            "window_start_study_day", "First study day of the visit window", "v.window_start", "window_start"
        ),
        date_study_day_column(
            "window_end_study_day", "Last study day of the visit window", "v.window_end", "window_end"
        ),
        study_day_column("occurred_study_day", "Study day the visit took place", "v.occurred_at", "occurred_at"),
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
            role="arm",
            derivation="1, 2, 3 ... for dosing visits; empty otherwise; present only with the arm column",
        ),
        Column(
            "days_since_last_dosing",
            INT,
            "Days since the most recent earlier dosing session",
            # The latest local date among the participant's other dosing sessions on or before this visit's (the one
            # value composed in is a constant of the code).
            (
                f"CASE WHEN v.occurred_at IS NOT NULL AND dd.ids IS NOT NULL THEN ({_OCCURRED} - "  # noqa: S608
                "(SELECT max((t.at AT TIME ZONE px.tz)::date) FROM unnest(dd.ids, dd.ats) t (id, at) "
                f"WHERE t.id <> v.id AND (t.at AT TIME ZONE px.tz)::date <= {_OCCURRED})) END"
            ),
            _days_since_dosing,
            role="arm",
            unit="days",
            derivation="local date this visit took place minus the local date of the latest other dosing visit that "
            "took place on or before it; empty if none or not taken place; present only with the arm column (when "
            "dosing took place differs by arm in a delayed-treatment design)",
        ),
        visit_dyad_column("id"),
        ARM,
        date_column("target_date", "Target date (local)", "v.target_date", "target_date"),
        date_column("window_start_date", "Window start (local)", "v.window_start", "window_start"),
        date_column("window_end_date", "Window end (local)", "v.window_end", "window_end"),
        local_date_column("occurred_date", "Date it took place (local)", "v.occurred_at", "occurred_at"),
    ),
    # The participant's dosing sessions that took place, grouped once per participant (for days_since_last_dosing;
    # the planner drops the join when that column is not exported), and the staff booked on each visit. The one value
    # composed in is the VisitKind member, a constant of the code, never request input.
    from_sql=(
        "JOIN scheduling_visit v ON v.participant_id = px.id "  # noqa: S608
        "LEFT JOIN (SELECT d.participant_id, array_agg(d.id) AS ids, array_agg(d.occurred_at) AS ats "
        f"FROM scheduling_visit d WHERE d.kind = '{VisitKind.DOSING.value}' AND d.occurred_at IS NOT NULL "
        "GROUP BY d.participant_id) dd ON dd.participant_id = v.participant_id" + VISIT_STAFF_JOIN
    ),
    order_sql="px.participant_id, v.target_date NULLS LAST, v.id",
    filter_sql={"visit_code": "v.code"},
    changed_sql="v.updated_at",
    source=RowSource(
        queryset=visits_at_sites,
        fields=(
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
        ),
        order_by=("participant__participant_id", F("target_date").asc(nulls_last=True), "id"),
        participant="participant_id",
        visit_code="code",
        changed=("updated_at",),
    ),
    needs_dosing=True,
    needs_staff=True,
    visit_rows=VISIT_ROWS,
)
