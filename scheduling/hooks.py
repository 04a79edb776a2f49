"""What other apps may ask scheduling to tell them, without scheduling importing them (arrows go one way).

- ``on_visits_changed(fn)``: ``fn(*, participant, visits, by)`` runs inside the writing transaction whenever visits
  are created or a visit's window, dates or status change, with the visits created or changed.
- ``register_instrument_catalogue(fn)``: ``fn() -> set[str]``, the instrument codes protocols may name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from participants.access import Actor
    from participants.models import Participant
    from scheduling.models import Visit

VisitsChangedHook = Callable[..., Any]
InstrumentCatalogue = Callable[[], set[str]]

_visits_changed: list[VisitsChangedHook] = []
_instrument_catalogues: list[InstrumentCatalogue] = []


def on_visits_changed(fn: VisitsChangedHook) -> VisitsChangedHook:
    _visits_changed.append(fn)
    return fn


def visits_changed(*, participant: Participant, visits: Sequence[Visit], by: Actor) -> None:
    """Tell every registered hook; called by scheduling's services inside their transaction."""
    if not visits:
        return
    for fn in _visits_changed:
        fn(participant=participant, visits=list(visits), by=by)


def register_instrument_catalogue(fn: InstrumentCatalogue) -> InstrumentCatalogue:
    _instrument_catalogues.append(fn)
    return fn


def instrument_catalogue() -> set[str] | None:
    """The union of the registered catalogues, or None when nothing registered one (pure unit tests)."""
    if not _instrument_catalogues:
        return None
    codes: set[str] = set()
    for fn in _instrument_catalogues:
        codes |= fn()
    return codes
