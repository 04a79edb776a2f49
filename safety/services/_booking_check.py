"""The medication check of dosing-session bookings, registered with ``scheduling.hooks.on_dosing_booking`` (in
``safety.apps``): scheduling never imports safety."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from participants.access import Actor
from safety import medication_classes, selectors
from safety.washout import describe_block
from scheduling.models import Visit
from trialsite.errors import Conflict


def dosing_booking_check(*, visit: Visit, start: dt.datetime, by: Actor) -> list[tuple[str, Any, Any]]:
    """Refuse (409) a dosing session on a day a prohibited medication is taken or inside its washout, naming each
    medication and its washout end, unless an investigator recorded an override for this visit: then the booking
    goes ahead and its audit event names the override. The day is the session's date on the site's clock."""
    participant = visit.participant
    day = start.astimezone(zoneinfo.ZoneInfo(participant.site.time_zone)).date()
    blocking = selectors.blocking_medications(participant, day)
    if not blocking:
        return []
    classes = medication_classes.medication_classes()
    messages = [describe_block(m, days, classes.label(m.medication_class)) for m, days in blocking]
    override = selectors.latest_medication_override(visit.pk)
    if override is None:
        raise Conflict(
            f"{visit.code} cannot be booked on {day.isoformat()}: {'; '.join(messages)}. "
            "An investigator may record an override with a reason.",
            field_errors={"medications": messages},
            code="prohibited_medication",
        )
    by_whom = override.recorded_by.username
    return [
        ("medication_override", None, f"override {override.pk} by {by_whom}: {override.reason} ({'; '.join(messages)})")
    ]
