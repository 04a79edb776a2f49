"""Which visit status may follow which. Pure: the services ask here before they write."""

from __future__ import annotations

from scheduling.models import Visit
from trialsite.errors import InvalidTransition

__all__ = ["OPEN", "TRANSITIONS", "check_transition"]

V = Visit.Status
# Statuses of a visit that has not happened yet: re-planning may move it, withdrawal cancels it.
OPEN: frozenset[str] = frozenset({V.PLANNED, V.SCHEDULED})
TRANSITIONS: dict[str, frozenset[str]] = {
    V.PLANNED: frozenset({V.SCHEDULED, V.COMPLETED, V.MISSED, V.CANCELLED}),
    # scheduled -> scheduled is a reschedule (new slot, room or staff).
    V.SCHEDULED: frozenset({V.SCHEDULED, V.COMPLETED, V.MISSED, V.CANCELLED}),
    V.COMPLETED: frozenset(),
    V.MISSED: frozenset(),
    V.CANCELLED: frozenset(),
}


def check_transition(visit: Visit, new_status: str) -> None:
    """Raise InvalidTransition (a 400 naming both statuses) unless ``visit`` may move to ``new_status``."""
    if new_status not in TRANSITIONS.get(visit.status, frozenset()):
        raise InvalidTransition(
            f"cannot change visit status from '{visit.status}' to '{new_status}'",
            field_errors={"status": [f"current status is '{visit.status}'; requested '{new_status}'"]},
        )
