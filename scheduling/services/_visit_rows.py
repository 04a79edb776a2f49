"""Private helpers shared by the visit services: lock a visit, audit a change to it, free its bookings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from audit.services import audit_participant_record
from participants.access import Actor
from scheduling.models import Booking, Visit


def _lock(visit: Visit) -> Visit:
    """The visit read again and locked until the transaction ends, with what its services and messages read."""
    return (
        Visit.objects.select_for_update(of=("self",))
        .select_related("participant__site", "participant__study")
        .get(pk=visit.pk)
    )


def _audit_visit(
    visit: Visit, *, by: Actor, action: str, changes: Iterable[tuple[str, Any, Any]], reason: str | None = None
) -> None:
    audit_participant_record(
        visit.participant, by=by, action=action, entity_type="visit", entity_id=visit.pk, changes=changes, reason=reason
    )


def _release_bookings(visit: Visit) -> None:
    # Bookings are reservations of rooms and people, not trial data: freeing them is the point of cancelling.
    Booking.objects.filter(visit=visit).delete()
