"""The demo seed as ``manage.py seed_demo`` runs it: the participants part (participants.demo) with the scheduling step
it cannot take itself (participants does not import scheduling)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from participants import demo
from participants.models import Participant
from scheduling import selectors as scheduling_selectors
from scheduling.services import visit_complete


def _screen_and_baseline(participant: Participant, by: AbstractUser) -> None:
    """Screening and baseline happen today, before randomization, as samati-v2 requires (both windows open on the
    screening day), so the demo's randomized participants carry no protocol deviation."""
    visits = {v.code: v for v in scheduling_selectors.participant_visits(participant.pk)}
    for code in ("SCREEN", "BASELINE"):
        # BASELINE is re-read: completing SCREEN re-planned it from the actual screening date.
        visit = scheduling_selectors.participant_visits(participant.pk).get(pk=visits[code].pk)
        visit_complete(visit=visit, occurred_at=timezone.now(), by=by)


def seed_demo() -> list[tuple[str, str, str]]:
    """Create the demo study once; on later runs only reset the demo passwords. Returns (user, password, roles)."""
    return demo.seed_demo(before_randomize=_screen_and_baseline)
