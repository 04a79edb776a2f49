"""The static visit-order check: no visit's window may open before a visit it is meant to follow. Pure, no Django.

Why a static check: the engine anchors a visit on the ACTUAL date of the visit before it, and a visit may happen
anywhere inside its window without a deviation. So a protocol whose windows look fine at their targets can still let,
say, the endpoint window open before the last dosing session when every dosing session is late but in its window. The
check proves, from the declaration alone, that this cannot happen.

The model. Every arm's visits form a tree of anchors rooted at enrollment. A visit's actual date lies in
``[anchor + offset - window_before, anchor + offset + window_after]`` of its anchor's actual date; randomization lies
at or after enrollment (or at or after the visit named by ``randomization_after``), with no upper bound. For "B follows
A", take the nearest common ancestor C of A and B's anchor: A happens at the latest at C + (the sum of the largest
lateness along C..A), and B's window opens at the earliest at C + (the sum of the smallest offsets along C..anchor(B))
+ offset(B) - window_before(B). Paths below C do not share a visit, so these bounds are exact, not just safe. B opening
on the same day as A is allowed (an integration session the morning after dosing is the common case).

What "meant to follow" means is declared, never guessed: a visit's ``follows`` list, the primary comparison (its
endpoint follows its baseline) and a phase (its ``before_visit`` follows its ``to_visit``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = ["AnchoredVisit", "Bound", "OrderRule", "anchor_bounds", "order_errors"]

ENROLLMENT = "enrollment"
RANDOMIZATION = "randomization"


@dataclass(frozen=True)
class Bound:
    """``actual(node) - actual(parent)`` lies in ``[low, high]`` days; ``high`` None means no upper bound."""

    parent: str | None
    low: int
    high: int | None


@dataclass(frozen=True)
class OrderRule:
    """``later`` must never open before ``earlier`` happens; ``path`` is the JSON path an error is reported at."""

    later: str
    earlier: str
    path: str


class AnchoredVisit(Protocol):
    """What the check needs of a visit (scheduling.protocol.VisitDef has it)."""

    @property
    def code(self) -> str: ...
    @property
    def anchor(self) -> str: ...
    @property
    def offset_days(self) -> int: ...
    @property
    def window_before_days(self) -> int: ...
    @property
    def window_after_days(self) -> int: ...


def anchor_bounds(visits: Iterable[AnchoredVisit], *, randomization_after: str | None = None) -> dict[str, Bound]:
    """The anchor tree of one arm: node -> Bound. Nodes are the visit codes plus "enrollment" and "randomization"."""
    bounds: dict[str, Bound] = {
        ENROLLMENT: Bound(None, 0, 0),
        # Randomization comes after enrollment (the participant status machine) or after the declared visit, but how long
        # after is not bounded: a visit hanging on randomization is never proven to come before one that does not.
        RANDOMIZATION: Bound(randomization_after or ENROLLMENT, 0, None),
    }
    for v in visits:
        parent = v.anchor.split(":", 1)[1] if v.anchor.startswith("visit:") else v.anchor
        bounds[v.code] = Bound(parent, v.offset_days - v.window_before_days, v.offset_days + v.window_after_days)
    return bounds


def _chain(bounds: Mapping[str, Bound], node: str) -> list[str]:
    """``node`` and its ancestors up to the root, nearest first."""
    out = [node]
    seen = {node}
    while (parent := bounds[out[-1]].parent) is not None and parent not in seen:
        out.append(parent)
        seen.add(parent)
    return out


def _latest(bounds: Mapping[str, Bound], path: list[str]) -> int | None:
    """Sum of the largest lateness along ``path`` (nodes below the common ancestor); None when unbounded."""
    total = 0
    for node in path:
        high = bounds[node].high
        if high is None:
            return None
        total += high
    return total


def order_errors(bounds: Mapping[str, Bound], rules: Iterable[OrderRule]) -> list[str]:
    """One message per broken rule, prefixed by the rule's JSON path."""
    errors: list[str] = []
    for rule in rules:
        later, earlier = rule.later, rule.earlier
        if later not in bounds or earlier not in bounds:
            continue  # an unknown code is reported by the caller's reference checks
        up_earlier = _chain(bounds, earlier)
        if later in up_earlier:
            errors.append(f"{rule.path}: {later} cannot follow {earlier}, which is anchored on it")
            continue
        parent = bounds[later].parent
        assert parent is not None  # a visit always has an anchor
        up_later = _chain(bounds, parent)
        common = next(n for n in up_earlier if n in set(up_later))
        latest = _latest(bounds, up_earlier[: up_earlier.index(common)])
        earliest_open = sum(bounds[n].low for n in up_later[: up_later.index(common)]) + bounds[later].low
        if latest is None:
            errors.append(
                f"{rule.path}: the window of {later} can open before {earlier}: {earlier} hangs on randomization, "
                f"which has no latest date relative to {common} (anchor {later} on {earlier} or on a visit after it)"
            )
        elif earliest_open < latest and common == earlier:
            errors.append(
                f"{rule.path}: the window of {later} can open {latest - earliest_open} day(s) before {earlier}, which "
                f"it hangs on: counted from {earlier}, {later}'s window may open on day {earliest_open}"
            )
        elif earliest_open < latest:
            errors.append(
                f"{rule.path}: the window of {later} can open {latest - earliest_open} day(s) before {earlier}: "
                f"counted from {common}, {earlier} may happen as late as day {latest} within its windows, while "
                f"{later}'s window may open on day {earliest_open}"
            )
    return errors
