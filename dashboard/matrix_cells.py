"""The record status matrix's columns and cells, decided from rows already read. Pure: no query, no clock of its own.

A cell's state combines the visit's stored status, its window against the site's today, an out-of-window deviation,
and its questionnaires as ``assessments.windows.administration_status`` sees them now (a self-report whose window
has closed is expired, whatever its stored status says)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from assessments.models import Administration
from assessments.windows import ANSWERABLE, administration_status
from scheduling.blinded_view import neutral_columns, protocol_faces
from scheduling.models import Visit
from scheduling.protocol import Protocol

V = Visit.Status


class CellState(StrEnum):
    PLANNED = "planned"
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    MISSED = "missed"
    OUT_OF_WINDOW = "out-of-window"
    QUESTIONNAIRES = "questionnaires"
    NOT_APPLICABLE = "not-applicable"


@dataclass(frozen=True)
class LegendEntry:
    state: CellState
    symbol: str
    label: str | Promise
    meaning: str | Promise


LEGEND: tuple[LegendEntry, ...] = (
    LegendEntry(CellState.PLANNED, "○", _("Planned"), _("on the plan, not yet booked")),
    LegendEntry(CellState.SCHEDULED, "◔", _("Scheduled"), _("booked")),
    LegendEntry(CellState.COMPLETED, "✓", _("Completed"), _("done in its window, questionnaires done")),
    LegendEntry(CellState.MISSED, "✗", _("Missed"), _("recorded as missed")),
    LegendEntry(
        CellState.OUT_OF_WINDOW,
        "!",
        _("Out of window"),
        _("window closed and not done, or done with an out-of-window deviation"),
    ),
    LegendEntry(
        CellState.QUESTIONNAIRES,
        "✎",
        _("Questionnaires outstanding"),
        _("visit done or its window open, questionnaires still due"),
    ),
    LegendEntry(
        CellState.NOT_APPLICABLE, "–", _("Cancelled or not applicable"), _("cancelled, or not on the schedule")
    ),
)
LEGEND_BY_STATE = {entry.state: entry for entry in LEGEND}


@dataclass(frozen=True)
class Column:
    code: str
    name: str


def shared_visit_codes(protocol: Protocol | None) -> frozenset[str] | None:
    """The visit codes every arm of the protocol has (None when it has no arms: no visit then names an arm)."""
    if protocol is None or not protocol.arms:
        return None
    return protocol.shared_visit_codes()


def visit_columns(protocol: Protocol | None, *, arm_visible: bool) -> list[Column]:
    """The protocol's visits in protocol order. A viewer who may not see the arm gets only the visits every arm has:
    a visit of one arm only would tell which arm a participant is in. Others get every arm's visits, an arm's own
    visit placed after the visit that precedes it in that arm."""
    if protocol is None or not protocol.arms:
        return []
    arms = list(protocol.arms.values())
    if not arm_visible:
        # Only the visits every arm has in the same form (scheduling.blinded_view): a visit every arm has under one
        # code but at another time would tell the arm by its state.
        own = protocol_faces(protocol).own_codes()
        return [Column(v.code, v.name) for v in arms[0].visits if v.code in own]
    order: list[Column] = []
    seen: set[str] = set()
    for arm in arms:
        at = 0
        for v in arm.visits:
            if v.code in seen:
                at = next(i for i, c in enumerate(order) if c.code == v.code) + 1
                continue
            order.insert(at, Column(v.code, v.name))
            seen.add(v.code)
            at += 1
    return order


def neutral_visit_columns(protocol: Protocol | None) -> tuple[list[Column], dict[str, frozenset[str]]]:
    """The columns of a blinded viewer's matrix: the schedule as the blinded view shows it (the visits every arm has
    alike, the timepoints under their neutral names), and per column the visit codes that show as it."""
    if protocol is None or not protocol.arms:
        return [], {}
    columns = neutral_columns(protocol)
    return [Column(code, name) for code, name, _ in columns], {code: sources for code, _, sources in columns}


def questionnaires_due(administrations: Iterable[Administration], now: dt.datetime) -> bool:
    """Is any self-report or clinician questionnaire of the visit still to be answered at ``now``?"""
    return any(administration_status(adm, now) in ANSWERABLE for adm in administrations)


def cell_state(
    visit: Visit | None, administrations: Sequence[Administration], *, today: dt.date, now: dt.datetime
) -> CellState:
    """The state of one visit at ``now``; ``today`` is the site's calendar day then. ``visit`` carries the
    ``out_of_window_deviation`` annotation of ``scheduling.selectors.matrix_visits``."""
    if visit is None or visit.status == V.CANCELLED:
        return CellState.NOT_APPLICABLE
    if visit.status == V.MISSED:
        return CellState.MISSED
    if visit.status == V.COMPLETED:
        if questionnaires_due(administrations, now):
            return CellState.QUESTIONNAIRES
        if getattr(visit, "out_of_window_deviation", False):
            return CellState.OUT_OF_WINDOW
        return CellState.COMPLETED
    # Planned or scheduled: not done yet.
    if visit.window_end is not None and visit.window_end < today:
        return CellState.OUT_OF_WINDOW
    window_open = visit.window_start is not None and visit.window_start <= today
    if window_open and questionnaires_due(administrations, now):
        return CellState.QUESTIONNAIRES
    return CellState.SCHEDULED if visit.status == V.SCHEDULED else CellState.PLANNED
