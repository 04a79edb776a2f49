"""The SQL path: one SELECT per export, used by ``COPY`` (CSV) and by the server-side row stream (other formats).

All SQL text here is static and trusted (the declarations in exports.datasets and exports.wide); every value that
comes from a request is composed in with ``psycopg.sql.Literal``, never formatted into a string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from psycopg import sql

from exports.columns import TEXT, Filters, Scope, escape_sql
from exports.datasets import SCORES, Dataset
from exports.pseudonyms import StaffIds
from exports.timepoints import TIMEPOINT_JOIN, TimepointMap, timepoint_cte, timepoint_map
from exports.wide import WideColumn, index_columns
from scheduling.protocol import VisitKind

# Each participant's treating dyad: the staff of their first dosing session with staff booked (exports.pseudonyms),
# grouped once for every participant (joined in px as ``td``). The one value composed in is the VisitKind member, a
# constant of the code, never request input.
_TREATING_DYAD_JOIN = (
    " LEFT JOIN (SELECT DISTINCT ON (d.participant_id) d.participant_id, vst.members FROM scheduling_visit d "  # noqa: S608
    "JOIN (SELECT vs.visit_id, string_agg(vs.user_id::text, ',' ORDER BY vs.user_id) AS members "
    "FROM scheduling_visit_staff vs GROUP BY vs.visit_id) vst ON vst.visit_id = d.id "
    f"WHERE d.kind = '{VisitKind.DOSING.value}' "
    "ORDER BY d.participant_id, d.dosing_number NULLS LAST, d.id) td ON td.participant_id = p.id"
)


def _px(scope: Scope, staff: StaffIds | None = None, timepoints: TimepointMap | None = None) -> sql.Composable:
    """Participants in scope with their study, time zone, day 0 and (only when visible) arm; with ``staff``, the
    pseudonym mapping (a JSON literal computed in Python: the key never reaches the database) as ``px.staff`` and
    the treating dyad's id as ``px.dyad_id``; with ``timepoints``, the mapping as the table ``tp`` and, for joining
    it only (never a column of a blinded export), the schedule's protocol version and the arm key (exports.timepoints).
    """
    staff_cols: sql.Composable = sql.SQL("")
    staff_join: sql.Composable = sql.SQL("")
    if staff is not None:
        staff_cols = sql.SQL(
            ", {m}::jsonb AS staff, ({m}::jsonb ->> ('D:' || p.study_id || ':' || td.members)) AS dyad_id"
        ).format(m=sql.Literal(json.dumps(staff.by_key, sort_keys=True)))
        staff_join = sql.SQL(_TREATING_DYAD_JOIN)
    arm_col: sql.Composable = sql.SQL(", arm.code AS arm") if scope.with_arm else sql.SQL("")
    if timepoints is not None:
        arm_col += sql.SQL(", ps.protocol_version_id AS pv_id, COALESCE(arm.code, '') AS tp_arm")
    arm_join = (
        sql.SQL(
            " LEFT JOIN participants_allocationslot sl ON sl.participant_id = p.id"
            " LEFT JOIN participants_arm arm ON arm.id = sl.arm_id"
        )
        if scope.with_arm or timepoints is not None
        else sql.SQL("")
    )
    tp_cte = sql.SQL(", {} ").format(timepoint_cte(timepoints)) if timepoints is not None else sql.SQL("")
    where = [sql.SQL("p.site_id = ANY({})").format(sql.Literal(list(scope.site_ids)))]
    if scope.study_ids is not None:
        where.append(sql.SQL("p.study_id = ANY({})").format(sql.Literal(list(scope.study_ids))))
    return sql.SQL(
        "WITH px AS (SELECT p.id, p.participant_id, p.study_id, s.code AS site_code, z.tz, "
        "COALESCE(ps.randomization_date, ps.enrollment_date, (p.randomized_at AT TIME ZONE z.tz)::date, "
        "(p.enrolled_at AT TIME ZONE z.tz)::date) AS day0{staff_cols}{arm_col} "
        "FROM participants_participant p JOIN participants_site s ON s.id = p.site_id "
        "LEFT JOIN participants_contactdetails c ON c.participant_id = p.id "
        "CROSS JOIN LATERAL (SELECT COALESCE(NULLIF(c.time_zone, ''), s.time_zone) AS tz) z "
        "LEFT JOIN scheduling_participantschedule ps ON ps.participant_id = p.id{arm_join}{staff_join} "
        "WHERE {where}) {tp_cte}"
    ).format(
        staff_cols=staff_cols,
        arm_col=arm_col,
        arm_join=arm_join,
        staff_join=staff_join,
        where=sql.SQL(" AND ").join(where),
        tp_cte=tp_cte,
    )


def filter_clauses(filter_sql: Mapping[str, str], changed_sql: str | None, filters: Filters) -> list[sql.Composable]:
    """The WHERE conditions of the request's filters that the dataset accepts."""
    clauses: list[sql.Composable] = []
    if filters.instruments and "instrument" in filter_sql:
        clauses.append(sql.SQL(filter_sql["instrument"] + " = ANY({})").format(sql.Literal(list(filters.instruments))))
    if filters.visit_codes and "visit_code" in filter_sql:
        clauses.append(sql.SQL(filter_sql["visit_code"] + " = ANY({})").format(sql.Literal(list(filters.visit_codes))))
    if filters.changed_since and changed_sql:
        clauses.append(sql.SQL(changed_sql + " >= {}").format(sql.Literal(filters.changed_since)))
    return clauses


def _where(clauses: list[sql.Composable]) -> sql.Composable:
    return sql.SQL("WHERE ") + sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("")


def _select_list(columns: Sequence[tuple[str, str, sql.Composable]], escape: bool) -> sql.Composable:
    parts = []
    for name, type_, expr in columns:
        if escape and type_ == TEXT:
            expr = escape_sql(expr)
        parts.append(sql.SQL("{} AS {}").format(expr, sql.Identifier(name)))
    return sql.SQL(", ").join(parts)


def _blinded_filters(filter_sql: Mapping[str, str], blinded: bool) -> Mapping[str, str]:
    """A blinded export filters ?visit_code by timepoint code (an arm's own visit code would name the arm)."""
    if blinded and "visit_code" in filter_sql:
        return {**filter_sql, "visit_code": "tp.timepoint"}
    return filter_sql


def select_sql(
    dataset: Dataset,
    scope: Scope,
    filters: Filters,
    *,
    escape: bool,
    staff: StaffIds | None = None,
    timepoints: TimepointMap | None = None,
) -> sql.Composed:
    """The dataset's rows; ``escape`` prefixes formula cells (for CSV, which spreadsheets open); ``staff`` for a
    dataset with pseudonymous staff columns; ``timepoints`` (read when not given) for a dataset of visit rows."""
    cols = [(c.name, c.type, c.expr) for c in dataset.visible(scope)]
    where = filter_clauses(_blinded_filters(dataset.filter_sql, dataset.blinded(scope)), dataset.changed_sql, filters)
    hidden = dataset.hidden_sql(scope) if dataset.hidden_sql is not None else None
    if hidden is not None:
        where.append(hidden)
    from_ = dataset.from_sql
    if dataset.visit_rows:
        timepoints = timepoint_map(scope) if timepoints is None else timepoints
        from_ += TIMEPOINT_JOIN
        blinded_rows = dataset.blinded_row_sql(scope)
        if blinded_rows:
            where.append(sql.SQL(blinded_rows))
    else:
        timepoints = None
    return sql.SQL("{px}SELECT {cols} FROM px {from_} {where} ORDER BY {order}").format(
        px=_px(scope, staff, timepoints),
        cols=_select_list(cols, escape),
        from_=sql.SQL(from_),
        where=_where(where),
        order=sql.SQL(dataset.order_sql),
    )


def wide_select_sql(
    wide: Sequence[WideColumn],
    scope: Scope,
    filters: Filters,
    *,
    escape: bool,
    timepoints: TimepointMap | None = None,
) -> sql.Composed:
    """The wide scores: the long scores grouped per participant x visit, one aggregate per wide column; a blinded
    export keeps to the visits that serve a timepoint, as the long scores do."""
    timepoints = timepoint_map(scope) if timepoints is None else timepoints
    cols: list[tuple[str, str, sql.Composable]] = [(c.name, c.type, c.expr) for c in index_columns(scope)]
    for w in wide:
        value = sql.SQL("NULLIF(s.text_value, '')") if w.type == TEXT else sql.SQL("s.value")
        cols.append(
            (
                w.name,
                w.type,
                sql.SQL("max({v}) FILTER (WHERE r.instrument_code = {i} AND s.kind = {k} AND s.code = {c})").format(
                    v=value, i=sql.Literal(w.instrument), k=sql.Literal(w.kind), c=sql.Literal(w.code)
                ),
            )
        )
    # ?changed_since applies to the whole row (its latest change), hence HAVING rather than WHERE.
    where = filter_clauses(_blinded_filters(SCORES.filter_sql, SCORES.blinded(scope)), None, filters)
    blinded_rows = SCORES.blinded_row_sql(scope)
    if blinded_rows:
        where.append(sql.SQL(blinded_rows))
    group = [
        sql.SQL("px.participant_id"),
        sql.SQL("px.site_code"),
        sql.SQL("v.id"),
        sql.SQL("tp.timepoint"),
        sql.SQL("tp.same_timing"),
    ]
    if scope.with_arm:
        group.append(sql.SQL("px.arm"))
    having = (
        sql.SQL(" HAVING max(GREATEST(r.updated_at, s.computed_at)) >= {}").format(sql.Literal(filters.changed_since))
        if filters.changed_since
        else sql.SQL("")
    )
    return sql.SQL("{px}SELECT {cols} FROM px {from_} {where} GROUP BY {group}{having} ORDER BY {order}").format(
        px=_px(scope, None, timepoints),
        cols=_select_list(cols, escape),
        from_=sql.SQL(SCORES.from_sql + TIMEPOINT_JOIN),
        where=_where(where),
        group=sql.SQL(", ").join(group),
        having=having,
        order=sql.SQL("px.participant_id, v.target_date NULLS LAST, v.id"),
    )
