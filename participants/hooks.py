"""Hooks other apps register to react after a participant changes, inside the writing transaction (e.g. scheduling
generates visits on randomization). Participants never imports them: arrows between apps go one way, so they
register themselves in their AppConfig.ready().

- ``on_enrolled(fn)``: ``fn(*, participant, by)`` runs after a participant is enrolled.
- ``on_randomized(fn)``: ``fn(*, participant, by)`` runs after a participant is randomized.
- ``on_withdrawn(fn)``: ``fn(*, participant, level, by)`` runs after a participant withdraws.

And one reader: ``set_protocol_reader(fn)``, where ``fn(protocol_code)`` answers what participants needs to know of
a study's protocol (``ProtocolFacts``: who gives the second unblinding approval, whether the arms' schedules differ),
or None for an unknown protocol. Scheduling owns protocols and registers it.

And ``on_history_read(fn)``: ``fn(user, participant)`` returns a condition on audit rows (a ``Q``) naming the rows of
the participant's history the user may not read, or None; a blinded viewer's history leaves out the records of visits
the blinded schedule does not show (scheduling and assessments register theirs).

Registering the same function twice keeps one registration, so a second ready() (e.g. in tests) is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q

from participants.access import Actor
from participants.models import Participant

Hook = Callable[..., None]

_after_enroll: list[Hook] = []
_after_randomize: list[Hook] = []
_after_withdraw: list[Hook] = []


def on_enrolled(hook: Hook) -> Hook:
    if hook not in _after_enroll:
        _after_enroll.append(hook)
    return hook


def on_randomized(hook: Hook) -> Hook:
    if hook not in _after_randomize:
        _after_randomize.append(hook)
    return hook


def on_withdrawn(hook: Hook) -> Hook:
    if hook not in _after_withdraw:
        _after_withdraw.append(hook)
    return hook


def run_enrolled(*, participant: Participant, by: Actor) -> None:
    for hook in list(_after_enroll):
        hook(participant=participant, by=by)


def run_randomized(*, participant: Participant, by: Actor) -> None:
    for hook in list(_after_randomize):
        hook(participant=participant, by=by)


def run_withdrawn(*, participant: Participant, level: str, by: Actor) -> None:
    for hook in list(_after_withdraw):
        hook(participant=participant, level=level, by=by)


@dataclass(frozen=True)
class ProtocolFacts:
    # The role (held at one of the study's sites) of the second person who must approve unblinding; None when the
    # protocol names none (participants.services.unblinding then applies its default).
    unblinding_second_approver_role: str | None
    # True when some arm has a visit another arm lacks (e.g. a waitlist design's delayed arm).
    schedule_differs_by_arm: bool


_protocol_reader: list[Callable[[str], ProtocolFacts | None]] = []


def set_protocol_reader(reader: Callable[[str], ProtocolFacts | None]) -> None:
    _protocol_reader[:] = [reader]


def protocol_facts(protocol_code: str) -> ProtocolFacts | None:
    if not protocol_code or not _protocol_reader:
        return None
    return _protocol_reader[0](protocol_code)


HistoryFilter = Callable[[Actor, Participant], Q | None]
_history_filters: list[HistoryFilter] = []


def on_history_read(fn: HistoryFilter) -> HistoryFilter:
    if fn not in _history_filters:
        _history_filters.append(fn)
    return fn


def history_hidden(user: Actor, participant: Participant) -> Q | None:
    """The rows of the participant's history ``user`` may not read, as every registered app names them."""
    hidden: Q | None = None
    for fn in list(_history_filters):
        q = fn(user, participant)
        if q is not None:
            hidden = q if hidden is None else hidden | q
    return hidden
