"""The participant status machine (pure; no database): which status may follow which."""

from __future__ import annotations

from participants.models import Participant
from trialsite.errors import InvalidTransition

S = Participant.Status
ACTIVE: frozenset[str] = frozenset({S.SCREENING, S.ELIGIBLE, S.CONSENTED, S.ENROLLED, S.RANDOMIZED, S.IN_TREATMENT})
_FORWARD: dict[str, set[str]] = {
    S.SCREENING: {S.ELIGIBLE, S.SCREEN_FAILED},
    S.ELIGIBLE: {S.CONSENTED},
    S.CONSENTED: {S.ENROLLED},
    S.ENROLLED: {S.RANDOMIZED},
    S.RANDOMIZED: {S.IN_TREATMENT},
    S.IN_TREATMENT: {S.COMPLETED},
    S.COMPLETED: set(),
    S.SCREEN_FAILED: set(),
    S.WITHDRAWN: set(),
    S.LOST_TO_FOLLOW_UP: set(),
}
# Any active participant may withdraw or be lost to follow-up.
TRANSITIONS: dict[str, frozenset[str]] = {
    status: frozenset(targets | ({S.WITHDRAWN, S.LOST_TO_FOLLOW_UP} if status in ACTIVE else set()))
    for status, targets in _FORWARD.items()
}


def require_transition(participant: Participant, new_status: str) -> None:
    """Refuse a status change the state machine does not allow, naming the current and the requested status."""
    if new_status not in TRANSITIONS.get(participant.status, frozenset()):
        raise InvalidTransition(
            f"cannot change status from '{participant.status}' to '{new_status}'",
            field_errors={
                "status": [f"current status is '{participant.status}'; requested '{new_status}' is not allowed"]
            },
        )
