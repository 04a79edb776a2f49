"""What assessments does when another app writes. Participants and scheduling never import assessments (arrows go one
way); AssessmentsConfig.ready() registers these with their hooks. Each runs inside the other app's transaction, so
the change and its consequences here commit together."""

from __future__ import annotations

from collections.abc import Sequence

from assessments import services
from assessments.library import instrument_catalogue, stored_instrument_catalogue
from participants import services as participant_services
from participants.access import Actor
from participants.models import Participant
from scheduling import hooks
from scheduling.models import Visit


def on_visits_changed(*, participant: Participant, visits: Sequence[Visit], by: Actor) -> None:
    """Visits created, re-planned, rescheduled or cancelled: their administrations follow."""
    services.administrations_follow_visits(participant=participant, visits=visits, by=by)


def on_participant_withdrawn(*, participant: Participant, level: str, by: Actor, **kwargs: object) -> None:
    """A withdrawal revokes the participant's links and closes what is still due, at every level."""
    services.links_revoke_for_participant(participant=participant, by=by, reason=f"participant withdrawn ({level})")
    services.administrations_close_for_withdrawal(participant=participant, level=level, by=by)


_registered = False


def register() -> None:
    """Register the hooks once (ready() may run again, e.g. in tests)."""
    global _registered
    if _registered:
        return
    _registered = True
    participant_services.on_withdrawn(on_participant_withdrawn)
    hooks.on_visits_changed(on_visits_changed)
    hooks.register_instrument_catalogue(instrument_catalogue)
    hooks.register_instrument_catalogue(stored_instrument_catalogue, stored=True)
