"""The schedule engine: visit target dates and windows from a protocol arm. Pure functions over ``datetime.date``.

Dates here are local calendar dates in the participant's time zone; converting aware datetimes to those dates is the
caller's job, because "which day" depends on where the participant lives, not on UTC.

Rules (docs/protocols.md):
- target = anchor date + offset_days; window = [target - window_before_days, target + window_after_days].
- A visit anchored on ``visit:X`` uses X's ACTUAL date once X happened and X's target until then, so integration
  sessions follow the real dosing date.
- A visit whose anchor date is not known yet (e.g. anchored on randomization before randomization) is left out of the
  plan, and so is everything anchored on it, until that date exists.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from scheduling.protocol import DAY0_ANCHORS, Arm, VisitDef

__all__ = [
    "PlannedDates",
    "changed_visits",
    "dependents",
    "plan_visits",
    "replan",
    "topological_order",
    "window_for",
]


@dataclass(frozen=True)
class PlannedDates:
    target: date
    window_start: date
    window_end: date

    def contains(self, day: date) -> bool:
        return self.window_start <= day <= self.window_end

    def shifted(self, days: int) -> PlannedDates:
        d = timedelta(days=days)
        return PlannedDates(self.target + d, self.window_start + d, self.window_end + d)


def window_for(visit: VisitDef, target: date) -> PlannedDates:
    return PlannedDates(
        target=target,
        window_start=target - timedelta(days=visit.window_before_days),
        window_end=target + timedelta(days=visit.window_after_days),
    )


def topological_order(arm: Arm) -> list[str]:
    """Visit codes with every anchor before the visits anchored on it; ties keep the listed order."""
    index = {v.code: i for i, v in enumerate(arm.visits)}
    children: dict[str, list[str]] = {v.code: [] for v in arm.visits}
    waiting: dict[str, int] = {}
    for v in arm.visits:
        parent = v.anchor_visit
        if parent is not None:
            if parent not in children:
                raise ValueError(f"arm {arm.code!r}: visit {v.code!r} is anchored on unknown visit {parent!r}")
            children[parent].append(v.code)
        waiting[v.code] = 1 if parent is not None else 0
    ready = [(index[c], c) for c, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, code = heapq.heappop(ready)
        order.append(code)
        for child in children[code]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (index[child], child))
    if len(order) != len(arm.visits):
        stuck = sorted(set(index) - set(order), key=index.__getitem__)
        raise ValueError(f"arm {arm.code!r}: anchor cycle among {', '.join(stuck)}")
    return order


def dependents(arm: Arm, code: str) -> list[str]:
    """Every visit anchored on ``code`` directly or through other visits, in topological order.

    ``code`` may also be "enrollment" or "randomization", which gives every visit that moves when that date moves.
    """
    if code not in DAY0_ANCHORS:
        arm.visit(code)  # KeyError for an unknown code: a typo must not read as "nothing depends on it"
    found: set[str] = {code}
    result: list[str] = []
    for c in topological_order(arm):
        v = arm.visit(c)
        root = v.anchor if v.anchor_visit is None else v.anchor_visit
        if root in found:
            found.add(c)
            result.append(c)
    return result


def _check_codes(arm: Arm, what: str, codes: Collection[str]) -> None:
    unknown = set(codes) - set(arm.codes)
    if unknown:
        raise ValueError(f"arm {arm.code!r}: {what} names unknown visits {sorted(unknown)}")


def _plan(
    arm: Arm,
    day0_dates: Mapping[str, date],
    actual: Mapping[str, date],
    frozen: Mapping[str, PlannedDates],
) -> dict[str, PlannedDates]:
    _check_codes(arm, "actual", actual)
    plans: dict[str, PlannedDates] = {}
    for code in topological_order(arm):
        if code in frozen:
            plans[code] = frozen[code]
            continue
        visit = arm.visit(code)
        parent = visit.anchor_visit
        if parent is None:
            base = day0_dates.get(visit.anchor)
        elif parent in actual:
            base = actual[parent]
        else:
            base = plans[parent].target if parent in plans else None
        if base is not None:
            plans[code] = window_for(visit, base + timedelta(days=visit.offset_days))
    # Listed order reads naturally in tables and tests; callers look visits up by code anyway.
    return {c: plans[c] for c in arm.codes if c in plans}


def plan_visits(
    arm: Arm,
    day0_dates: Mapping[str, date],
    actual: Mapping[str, date] | None = None,
) -> dict[str, PlannedDates]:
    """Target and window for every visit of ``arm`` whose anchor date is known.

    ``day0_dates`` has the keys "enrollment" and/or "randomization"; ``actual`` maps visit codes to the local date each
    visit actually happened.
    """
    return _plan(arm, day0_dates, actual or {}, {})


def replan(
    arm: Arm,
    day0_dates: Mapping[str, date],
    actual: Mapping[str, date],
    current: Mapping[str, PlannedDates],
    completed: Collection[str],
) -> dict[str, PlannedDates]:
    """The whole plan after something changed (a visit happened, an anchor date was corrected).

    Completed visits keep their ``current`` dates: their plan is history and must not be rewritten. Visits anchored on
    a completed visit use its actual date (or its kept target when no actual date is recorded, e.g. a missed visit), so
    a change never travels past a completed visit. Every other visit is recomputed. Compare the result with ``current``
    (see ``changed_visits``) to learn what moved.
    """
    _check_codes(arm, "completed", completed)
    frozen = {c: current[c] for c in completed if c in current}
    return _plan(arm, day0_dates, actual, frozen)


def changed_visits(before: Mapping[str, PlannedDates], after: Mapping[str, PlannedDates]) -> list[str]:
    """Codes whose planned dates differ between two plans (including visits planned in only one of them)."""
    return [c for c in dict.fromkeys([*before, *after]) if before.get(c) != after.get(c)]
