"""The vital-signs grid of a dosing session, computed from the protocol's declared timepoints and the rows recorded:
pure, so the API, the page and the close service read it the same way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from scheduling.protocol import DosingDeclaration, VitalTimepoint


def missing_timepoints(declaration: DosingDeclaration | None, recorded_codes: Iterable[str]) -> tuple[str, ...]:
    """The declared timepoints with no vital signs recorded, in declared order."""
    if declaration is None:
        return ()
    recorded = set(recorded_codes)
    return tuple(code for code in declaration.timepoint_codes if code not in recorded)


@dataclass(frozen=True)
class GridRow:
    timepoint: VitalTimepoint | None  # None: an unscheduled measurement
    vital: Any | None  # the VitalSign recorded there, None when missing


def grid(declaration: DosingDeclaration | None, vitals: Sequence[Any]) -> list[GridRow]:
    """One row per declared timepoint (with its vital sign or None), then the unscheduled measurements in time order."""
    by_code = {v.timepoint_code: v for v in vitals if v.timepoint_code}
    rows = [GridRow(t, by_code.get(t.code)) for t in (declaration.timepoints if declaration else ())]
    declared = set(declaration.timepoint_codes) if declaration else set()
    rows += [GridRow(None, v) for v in vitals if not v.timepoint_code or v.timepoint_code not in declared]
    return rows
