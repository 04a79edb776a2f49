"""When a prohibited medication stops keeping a participant from a dosing session: pure date arithmetic, shared by
the booking check, the medications page and the export. The washout runs ``washout_days`` after the stop date; a
session is allowed from the day after it ends. An ongoing medication has no washout end yet."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class _Medication(Protocol):
    name: str
    medication_class: str
    start_date: dt.date
    stop_date: dt.date | None


def washout_end(stop_date: dt.date | None, washout_days: int) -> dt.date | None:
    """The last day of the washout; None while the medication is ongoing."""
    if stop_date is None:
        return None
    return stop_date + dt.timedelta(days=washout_days)


def blocks(medication: _Medication, washout_days: int, day: dt.date) -> bool:
    """Whether the medication keeps a dosing session off ``day``: started by then, and ongoing or still washing out."""
    if medication.start_date > day:
        return False
    end = washout_end(medication.stop_date, washout_days)
    return end is None or day <= end


def describe_block(medication: _Medication, washout_days: int, class_label: str) -> str:
    end = washout_end(medication.stop_date, washout_days)
    if end is None or medication.stop_date is None:
        return f"{medication.name} ({class_label}) is being taken; its washout ends {washout_days} days after it stops"
    return (
        f"{medication.name} ({class_label}) stopped on {medication.stop_date.isoformat()}; "
        f"its washout ends on {end.isoformat()}"
    )
