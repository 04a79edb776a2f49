"""What other apps plug into scheduling, without scheduling importing them (arrows go one way).

- ``on_visits_changed(fn)``: ``fn(*, participant, visits, by)`` runs inside the writing transaction after scheduling
  creates visits (generation, an unscheduled visit) or changes a visit's window, dates or status (re-plan, schedule or
  reschedule, complete, miss, cancel, withdrawal), with the visits created or changed. An exception in ``fn`` rolls
  the whole write back, so what the hook derives never disagrees with the visits.
- ``on_dosing_booking(fn)``: ``fn(*, visit, start, by) -> list[(field, old, new)]`` runs inside ``visit_schedule``'s
  transaction before a dosing session's slot is held, with the session's start. It refuses the booking by raising
  (a ``trialsite.errors.Conflict`` for a 409), and returns audit changes to add to the booking's audit event (an
  override it honoured, say). The safety app checks prohibited medications and their washout here.
- ``register_instrument_catalogue(fn)``: ``fn() -> set[str]`` gives instrument codes that protocols may name.
  Protocol validation accepts the union of every registered catalogue.

Registering the same function twice has no effect, so a second ``AppConfig.ready()`` (as in tests) is harmless.
Nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import datetime as dt

    from participants.access import Actor
    from participants.models import Participant
    from scheduling.models import Visit

__all__ = [
    "DosingBookingCheck",
    "VisitsChangedHook",
    "InstrumentCatalogue",
    "dosing_booking_checked",
    "known_instrument_codes",
    "on_dosing_booking",
    "on_visits_changed",
    "register_instrument_catalogue",
    "unregister",
    "visits_changed",
]


class VisitsChangedHook(Protocol):
    def __call__(self, *, participant: Participant, visits: list[Visit], by: Actor) -> None: ...


class DosingBookingCheck(Protocol):
    def __call__(self, *, visit: Visit, start: dt.datetime, by: Actor) -> list[tuple[str, object, object]]: ...


InstrumentCatalogue = Callable[[], set[str]]

# The codes of the instrument library shipped with trialsite. Used only while no catalogue is registered, which is
# the case in pure unit tests that never start Django; a running site always asks the registered library.
_SHIPPED_LIBRARY_CODES: frozenset[str] = frozenset(
    {"PCL5", "CAPS5", "LSAS", "LSAS_SR", "SCS", "SCS_SF", "CSSRS_SCREEN"}
)

_visits_changed_hooks: list[VisitsChangedHook] = []
_dosing_booking_checks: list[DosingBookingCheck] = []
_catalogues: list[InstrumentCatalogue] = []
# Catalogues that read the database (instruments a site loaded). Pure parsing never asks them: a protocol file is
# checked against them where a database is at hand (loading a protocol, reading a stored one).
_stored_catalogues: list[InstrumentCatalogue] = []


def on_visits_changed(fn: VisitsChangedHook) -> VisitsChangedHook:
    """Register ``fn`` to run after every visit creation or change (see the module docstring)."""
    if fn not in _visits_changed_hooks:
        _visits_changed_hooks.append(fn)
    return fn


def on_dosing_booking(fn: DosingBookingCheck) -> DosingBookingCheck:
    """Register ``fn`` to check every dosing session booking (see the module docstring)."""
    if fn not in _dosing_booking_checks:
        _dosing_booking_checks.append(fn)
    return fn


def register_instrument_catalogue(fn: InstrumentCatalogue, *, stored: bool = False) -> InstrumentCatalogue:
    """Register ``fn`` as a source of instrument codes that protocols may name. ``stored=True`` marks a catalogue that
    reads the database; it is asked only by ``known_instrument_codes(stored=True)``."""
    registry = _stored_catalogues if stored else _catalogues
    if fn not in registry:
        registry.append(fn)
    return fn


def unregister(fn: object) -> None:
    """Remove ``fn`` from every registry it is in (tests that register a hook of their own)."""
    _visits_changed_hooks[:] = [h for h in _visits_changed_hooks if h is not fn]
    _dosing_booking_checks[:] = [h for h in _dosing_booking_checks if h is not fn]
    _catalogues[:] = [c for c in _catalogues if c is not fn]
    _stored_catalogues[:] = [c for c in _stored_catalogues if c is not fn]


def visits_changed(*, participant: Participant, visits: list[Visit], by: Actor) -> None:
    """Called by scheduling's services, inside their transaction, once per write that created or changed visits."""
    if not visits:
        return
    for fn in list(_visits_changed_hooks):
        fn(participant=participant, visits=list(visits), by=by)


def dosing_booking_checked(*, visit: Visit, start: dt.datetime, by: Actor) -> list[tuple[str, object, object]]:
    """Called by ``visit_schedule`` inside its transaction before a dosing session is held: every registered check,
    in order; the first to raise refuses the booking. Returns the audit changes the checks add."""
    changes: list[tuple[str, object, object]] = []
    for fn in list(_dosing_booking_checks):
        changes += fn(visit=visit, start=start, by=by)
    return changes


def known_instrument_codes(*, stored: bool = False) -> frozenset[str]:
    """The instrument codes protocols may name: every registered catalogue together (with ``stored``, also those that
    read the database, such as a site's own instruments), or the shipped library's codes when nothing is registered."""
    codes: set[str] = set()
    for fn in [*_catalogues, *(_stored_catalogues if stored else [])]:
        codes |= set(fn())
    return frozenset(codes) if _catalogues or (stored and _stored_catalogues) else _SHIPPED_LIBRARY_CODES
