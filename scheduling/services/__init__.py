"""Every write to scheduling: validated, atomic, audited in the same transaction (see docs/protocols.md).

One module per noun: protocols (stored protocol versions), generation (the visit plan and its re-planning), visits
(complete, miss, cancel, unscheduled visits, withdrawal), booking (slots, rooms and staff of a visit), rooms and
deviations. Reads are in ``scheduling.selectors``; pure helpers in ``scheduling.local_time`` and
``scheduling.lifecycle``."""

from __future__ import annotations

from scheduling.services.booking import visit_schedule
from scheduling.services.deviations import deviation_record
from scheduling.services.generation import schedule_generate
from scheduling.services.protocols import protocol_version_ensure, protocol_version_load
from scheduling.services.rooms import room_create, room_retire, room_update
from scheduling.services.visits import (
    visit_add_unscheduled,
    visit_cancel,
    visit_complete,
    visit_miss,
    visits_cancel_for_withdrawal,
)

__all__ = [
    "deviation_record",
    "protocol_version_ensure",
    "protocol_version_load",
    "room_create",
    "room_retire",
    "room_update",
    "schedule_generate",
    "visit_add_unscheduled",
    "visit_cancel",
    "visit_complete",
    "visit_miss",
    "visit_schedule",
    "visits_cancel_for_withdrawal",
]
