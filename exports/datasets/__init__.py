"""The export datasets, one module each (declaration and Python row source together), and their registry."""

from __future__ import annotations

from exports.datasets.adverse_events import ADVERSE_EVENTS
from exports.datasets.alerts import SAFETY_ALERTS
from exports.datasets.base import Dataset
from exports.datasets.deviations import DEVIATIONS
from exports.datasets.dosing_sessions import DOSING_SESSIONS
from exports.datasets.guesses import BLINDING_GUESSES
from exports.datasets.medications import CONCOMITANT_MEDICATIONS
from exports.datasets.participants import PARTICIPANTS
from exports.datasets.per_participant import PER_PARTICIPANT
from exports.datasets.responses import RESPONSES
from exports.datasets.scores import SCORES
from exports.datasets.visits import VISITS
from exports.datasets.vital_signs import VITAL_SIGNS

__all__ = [
    "ACCEPTS",
    "CONCOMITANT_MEDICATIONS",
    "BLINDING_GUESSES",
    "ADVERSE_EVENTS",
    "DATASETS",
    "DEVIATIONS",
    "DOSING_SESSIONS",
    "PARTICIPANTS",
    "PER_PARTICIPANT",
    "RESPONSES",
    "SAFETY_ALERTS",
    "SCORES",
    "VISITS",
    "VITAL_SIGNS",
    "Dataset",
]

# In this order in the codebook, the freezes and every list of datasets.
DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        PARTICIPANTS,
        VISITS,
        RESPONSES,
        SCORES,
        DEVIATIONS,
        SAFETY_ALERTS,
        ADVERSE_EVENTS,
        DOSING_SESSIONS,
        VITAL_SIGNS,
        CONCOMITANT_MEDICATIONS,
        BLINDING_GUESSES,
        PER_PARTICIPANT,
    )
}
# Filters each dataset accepts (the rest of the request parameters are refused with a 400 naming them).
ACCEPTS: dict[str, frozenset[str]] = {
    name: frozenset({"study", "site", *(["changed_since"] if d.changed_sql else []), *d.filter_sql})
    for name, d in DATASETS.items()
}
