"""The wide layout of the scores: one row per participant x visit, one ``<INSTRUMENT>_<code>`` column per scale and
flag of every instrument. Its columns come from the instrument definitions, its rows from the long scores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import F

from exports.columns import (
    ARM,
    FLOAT,
    INT,
    PARTICIPANT_ID,
    SITE,
    STUDY_DAY,
    TEXT,
    TIMEPOINT,
    YES_NO,
    Column,
    Filters,
    Scope,
    day_sql,
    local_sql,
    visit_code_column,
)
from exports.datasets.base import CHUNK_ROWS, blinded_column, participant_contexts
from exports.datasets.scores import SCORES
from exports.timepoints import timepoint_map


@dataclass(frozen=True)
class WideColumn:
    """One ``<INSTRUMENT>_<code>`` column of the wide scores layout."""

    name: str
    instrument: str
    instrument_version: str
    kind: str  # "scale" | "flag"
    code: str
    type: str
    label: str
    unit: str = ""
    derivation: str = ""
    allowed: str = ""
    values: Mapping[Any, str] | None = None


def wide_columns(instruments: Sequence[Any], only: Sequence[str] | None = None) -> list[WideColumn]:
    """Columns from the instrument definitions (not from the data), so the layout is the same whatever rows exist
    and matches the codebook. ``instruments`` are parsed definitions (assessments.definitions.Instrument)."""
    cols: list[WideColumn] = []
    for inst in sorted(instruments, key=lambda i: i.code):
        if only and inst.code not in only:
            continue
        for scale in inst.scales:
            how = scale.reported_method
            if scale.items:
                how += " of items " + ", ".join(scale.items)
            if scale.scales:
                how += " of scales " + ", ".join(scale.scales)
            reversed_ = sorted(scale.reversed) + sorted(scale.reversed_scales)
            if reversed_:
                how += "; reversed: " + ", ".join(reversed_)
            cols.append(
                WideColumn(
                    name=f"{inst.code}_{scale.code}",
                    instrument=inst.code,
                    instrument_version=inst.version,
                    kind="scale",
                    code=scale.code,
                    type=FLOAT,
                    label=f"{inst.code}: {scale.label}",
                    derivation=how + ("" if scale.recommended else " (not recommended by the authors)"),
                    allowed=f"{_num(scale.range_min)}..{_num(scale.range_max)}",
                    unit="score",
                )
            )
        for flag in inst.flags:
            text = flag.rule.get("type") == "cssrs_risk"
            levels = [lv["level"] for lv in flag.rule.get("levels", [])] + (
                [flag.rule["otherwise"]] if text and "otherwise" in flag.rule else []
            )
            cols.append(
                WideColumn(
                    name=f"{inst.code}_{flag.code}",
                    instrument=inst.code,
                    instrument_version=inst.version,
                    kind="flag",
                    code=flag.code,
                    type=TEXT if text else FLOAT,
                    label=f"{inst.code}: {flag.label}",
                    derivation=f"flag rule '{flag.rule.get('type')}'",
                    allowed="|".join(levels) if text else "0|1",
                    values={lv: lv for lv in levels} if text else YES_NO,
                )
            )
    return cols


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


WIDE_INDEX = (
    PARTICIPANT_ID,
    SITE,
    visit_code_column("visit_code"),
    TIMEPOINT,
    Column(
        "study_day",
        INT,
        "Study day of the earliest submission at this visit",
        "min(" + day_sql(local_sql("r.submitted_at")) + ")",
        lambda r, p: None,
        unit="days",
        derivation=STUDY_DAY,
        timing=True,
    ),
    ARM,
)


def index_columns(scope: Scope) -> list[Column]:
    """The columns in front of the scores that the caller may see (blinded: aligned on timepoints, as the long
    scores are)."""
    cols = [c for c in WIDE_INDEX if c.visible(scope)]
    return cols if scope.with_arm else [blinded_column(c) for c in cols]


def python_wide_rows(wide: Sequence[WideColumn], scope: Scope, filters: Filters) -> Iterator[tuple[Any, ...]]:
    """Wide rows from the long scores stream, grouped per participant x visit (the stream is ordered that way)."""
    contexts = participant_contexts(scope, with_timepoints=True)
    mapping = timepoint_map(scope)
    blinded = not scope.with_arm
    # Blinded, ?visit_code names timepoints: compared after the mapping (see emit()).
    wanted = set(filters.visit_codes or ()) if blinded else set()
    index = {(w.instrument, w.kind, w.code): i for i, w in enumerate(wide)}
    # ?changed_since applies to the whole row (its latest change), not to each score: see emit().
    assert SCORES.source is not None  # the long scores are a SELECT
    qs = SCORES.source.filtered(scope, Filters(filters.instruments, None if blinded else filters.visit_codes, None))
    stream = qs.order_by(
        "response__participant__participant_id",
        F("response__visit__target_date").asc(nulls_last=True),
        "response__visit_id",
    ).values_list(
        "response__participant_id",
        "response__visit_id",
        "response__visit__code",
        "response__visit__unscheduled",
        "response__instrument_code",
        "kind",
        "code",
        "value",
        "text_value",
        "response__submitted_at",
        "response__updated_at",
        "computed_at",
    )
    current: tuple[int, int, str, bool] | None = None
    values: list[Any] = []
    first_day: int | None = None
    last_change: dt.datetime | None = None

    def emit(current: tuple[int, int, str, bool]) -> tuple[Any, ...] | None:
        ctx = contexts[current[0]]
        if filters.changed_since and (last_change is None or last_change < filters.changed_since):
            return None
        of = None if current[3] else mapping.get((ctx.pv_id or 0, ctx.tp_arm, current[2]))
        timepoint = of.timepoint if of is not None else None
        if blinded and (of is None or (wanted and timepoint not in wanted)):
            return None
        head: list[Any] = [ctx.participant_id, ctx.site_code]
        if scope.with_arm:
            head.append(current[2])
        head += [timepoint, first_day if not blinded or (of is not None and of.same_timing) else None]
        if scope.with_arm:
            head.append(ctx.arm)
        return tuple(head + values)

    for pid, vid, vcode, unscheduled, inst, kind, code, value, text, submitted, updated, computed in stream.iterator(
        chunk_size=CHUNK_ROWS
    ):
        if current is None or (pid, vid) != current[:2]:
            if current is not None and (out := emit(current)) is not None:
                yield out
            current, values, first_day, last_change = (
                (pid, vid, vcode, unscheduled),
                [None] * len(wide),
                None,
                None,
            )
        ctx = contexts[pid]
        day = ctx.day(ctx.local(submitted))
        if day is not None and (first_day is None or day < first_day):
            first_day = day
        changed = max(updated, computed)
        last_change = changed if last_change is None else max(last_change, changed)
        i = index.get((inst, kind, code))
        if i is not None:
            values[i] = (text or None) if wide[i].type == TEXT else value
    if current is not None and (out := emit(current)) is not None:
        yield out
