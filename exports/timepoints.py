"""The protocols' timepoints as the exports use them: which timepoint each arm's visit serves.

Blinded exports (no arm column) align on the timepoints a protocol declares common to every arm
(``scheduling.protocol.blinded_schedule``: SCREENING, BASELINE, PRIMARY, FOLLOW_UP ...), never on an arm's own visit
codes: a visit row carries its neutral ``timepoint`` code, visits that serve no timepoint are left out, and target
dates and study days are given only for a timepoint whose visits are due at the same time in every arm
(``scheduling.protocol.same_timing``). Unblinded exports carry the visit code and the timepoint both.

The mapping is read from the protocol versions the participants in scope follow (a fixed number of queries) and
joined in SQL as a literal table ``tp`` (protocol version, arm, visit code -> timepoint); the participant's arm is
read inside the query for that join only and is never a column of a blinded export. A participant not yet randomized
has no arm: the visits every arm has under the same code (screening, baseline) still map, under the arm key ''.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from psycopg import sql

from exports.columns import Scope
from scheduling.protocol import Protocol, blinded_schedule, same_timing
from scheduling.selectors import protocol_versions_of_participants

NO_ARM = ""  # the arm key of a participant without an allocation


@dataclass(frozen=True)
class TimepointOf:
    """What one arm's visit is in the blinded schedule."""

    timepoint: str
    same_timing: bool  # every arm's visit of the timepoint is due at the same time: its dates may be exported
    kind: str | None  # the visit kind when every arm's visit of the timepoint has the same kind, else None


#: (protocol version pk, arm code or NO_ARM, visit code) -> its timepoint.
TimepointMap = Mapping[tuple[int, str, str], TimepointOf]


def protocol_timepoints(version_pk: int, protocol: Protocol) -> dict[tuple[int, str, str], TimepointOf]:
    """The mapping of one protocol version."""
    out: dict[tuple[int, str, str], TimepointOf] = {}
    for tp in blinded_schedule(protocol).timepoints:
        kinds = set()
        for arm_code, visit_code in tp.visits.items():
            arm = protocol.arms.get(arm_code)
            try:
                kinds.add(arm.visit(visit_code).kind if arm is not None else None)
            except KeyError:
                kinds.add(None)
        kind = next(iter(kinds)) if len(kinds) == 1 else None
        of = TimepointOf(tp.code, same_timing(protocol, tp), str(kind) if kind is not None else None)
        for arm_code, visit_code in tp.visits.items():
            out[(version_pk, arm_code, visit_code)] = of
        codes = set(tp.visits.values())
        if len(codes) == 1 and set(tp.visits) == set(protocol.arms):
            out[(version_pk, NO_ARM, codes.pop())] = of
    return out


def timepoint_map(scope: Scope) -> dict[tuple[int, str, str], TimepointOf]:
    """The mapping of every protocol version a participant in scope follows (two queries, whatever their number)."""
    out: dict[tuple[int, str, str], TimepointOf] = {}
    seen: set[int] = set()
    for version in protocol_versions_of_participants(scope.site_ids, scope.study_ids).values():
        if version.pk not in seen:
            seen.add(version.pk)
            out.update(protocol_timepoints(version.pk, version.protocol()))
    return out


def timepoint_cte(mapping: TimepointMap) -> sql.Composable:
    """``tp AS (...)``: the mapping as a literal table, joined by the visit datasets (``TIMEPOINT_JOIN``)."""
    if not mapping:
        return sql.SQL(
            "tp AS (SELECT NULL::int AS pv_id, NULL::text AS arm, NULL::text AS visit_code, NULL::text AS timepoint, "
            "NULL::boolean AS same_timing, NULL::text AS kind WHERE false)"
        )
    rows = [
        sql.SQL("({}::int, {}::text, {}::text, {}::text, {}::boolean, {}::text)").format(
            sql.Literal(pv),
            sql.Literal(arm),
            sql.Literal(code),
            sql.Literal(of.timepoint),
            sql.Literal(of.same_timing),
            sql.Literal(of.kind),
        )
        for (pv, arm, code), of in sorted(mapping.items())
    ]
    return sql.SQL("tp (pv_id, arm, visit_code, timepoint, same_timing, kind) AS (VALUES {})").format(
        sql.SQL(", ").join(rows)
    )


# The join of a dataset whose rows have a visit ``v``: its timepoint (none for an unscheduled visit).
TIMEPOINT_JOIN = (
    " LEFT JOIN tp ON tp.pv_id = px.pv_id AND tp.arm = px.tp_arm AND tp.visit_code = v.code AND NOT v.unscheduled"
)
