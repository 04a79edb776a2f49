"""Writing audit events. Called by every domain service inside its own transaction, so a write and its audit
row commit or roll back together.

No lock is taken here: the rows of one action go in one INSERT, each with the keyed MAC of its content, and the
sequencer gives them their place in the chain after the transaction commits (audit/sequencer.py explains why)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from audit.chain import content_mac, hashed_fields
from audit.keys import audit_key
from audit.models import AuditEvent
from audit.sequencer import chain_pending_on_commit

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    # The same as participants.access.Actor, spelled out here: participants imports audit, never the reverse.
    Actor: TypeAlias = AbstractBaseUser | AnonymousUser | None
else:
    Actor = Any

Changes = Iterable[tuple[str, Any, Any]]


class _Site(Protocol):
    @property
    def code(self) -> str: ...


class _ParticipantLike(Protocol):
    """What a participant's audit row reads: its pseudonymous id and its site's code."""

    @property
    def participant_id(self) -> str: ...

    @property
    def site(self) -> _Site: ...


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, Model):
        return value.pk
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    return str(value)


def audit_record(
    *,
    by: Actor,
    action: str,
    entity_type: str,
    entity_id: Any = "",
    participant_id: str = "",
    site_code: str = "",
    changes: Changes = (("", None, None),),
    reason: str | None = None,
    sensitivity: str = "",
    actor_username: str | None = None,
) -> list[AuditEvent]:
    """Append one event per changed field, in one INSERT. ``changes`` holds (field, old, new) triples."""
    return _insert(
        _events(
            by=by,
            action=action,
            entity_type=entity_type,
            entries=[(entity_id, changes)],
            participant_id=participant_id,
            site_code=site_code,
            reason=reason,
            sensitivity=sensitivity,
            actor_username=actor_username,
        )
    )


def _events(
    *,
    by: Actor,
    action: str,
    entity_type: str,
    entries: Iterable[tuple[Any, Changes]],
    participant_id: str,
    site_code: str,
    reason: str | None,
    sensitivity: str,
    actor_username: str | None = None,
) -> list[AuditEvent]:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the writing service's transaction")
    now = timezone.now()
    actor = by if isinstance(by, get_user_model()) and by.pk else None
    username = actor_username if actor_username is not None else (actor.get_username() if actor else "system")
    return [
        AuditEvent(
            occurred_at=now,
            actor=actor,
            actor_username=username,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            participant_id=participant_id,
            site_code=site_code,
            field=field,
            old_value=jsonable(old),
            new_value=jsonable(new),
            reason=reason or "",
            sensitivity=sensitivity,
        )
        for entity_id, changes in entries
        for field, old, new in changes
    ]


def _insert(events: list[AuditEvent]) -> list[AuditEvent]:
    """One INSERT for the rows of an action, each with its keyed MAC (computed in Python, a pure function of key and
    content); chained after commit."""
    key = audit_key()
    for event in events:
        event.mac = content_mac(key, hashed_fields(event))
    created = AuditEvent.objects.bulk_create(events)
    chain_pending_on_commit()
    return created


def audit_events_build(
    *,
    by: Actor,
    action: str,
    entity_type: str,
    entity_id: Any = "",
    participant_id: str = "",
    site_code: str = "",
    changes: Changes = (("", None, None),),
    reason: str | None = None,
    sensitivity: str = "",
    actor_username: str | None = None,
    occurred_at: dt.datetime,
) -> list[AuditEvent]:
    """The unsaved rows of one action as of ``occurred_at``: what ``audit_record`` writes, built in one place so that
    a bulk writer (``manage.py seed_scale``) writes exactly the rows a service would."""
    events = _events(
        by=by,
        action=action,
        entity_type=entity_type,
        entries=[(entity_id, changes)],
        participant_id=participant_id,
        site_code=site_code,
        reason=reason,
        sensitivity=sensitivity,
        actor_username=actor_username,
    )
    for event in events:
        event.occurred_at = occurred_at
    return events


def audit_append_bulk(events: list[AuditEvent], *, batch_size: int = 5000) -> int:
    """Append rows built by ``audit_events_build`` (many actions, in the order given) in batched INSERTs, each row
    with its keyed MAC, chained after commit in that order as the services' own rows are. For bulk writers only
    (``manage.py seed_scale``)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_append_bulk must run inside the writing transaction")
    key = audit_key()
    for start in range(0, len(events), batch_size):
        batch = events[start : start + batch_size]
        for event in batch:
            event.mac = content_mac(key, hashed_fields(event))
        AuditEvent.objects.bulk_create(batch)
    chain_pending_on_commit()
    return len(events)


def audit_participant_record(
    participant: _ParticipantLike,
    *,
    by: Actor,
    action: str,
    entity_type: str,
    entity_id: Any,
    changes: Changes,
    reason: str | None = None,
    sensitivity: str = "",
) -> list[AuditEvent]:
    """An event about something that belongs to a participant: indexed by the pseudonymous id and the site so the
    participant's history is one read."""
    return audit_record(
        by=by,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        participant_id=participant.participant_id,
        site_code=participant.site.code,
        changes=changes,
        reason=reason,
        sensitivity=sensitivity,
    )


def audit_participant_records(
    participant: _ParticipantLike,
    *,
    by: Actor,
    action: str,
    entity_type: str,
    entries: Iterable[tuple[Any, Changes]],
    reason: str | None = None,
    sensitivity: str = "",
) -> list[AuditEvent]:
    """One action on several records of a participant (every link revoked, every alert a response raised): their
    events in one INSERT. ``entries`` holds (entity id, changes) pairs."""
    events = _events(
        by=by,
        action=action,
        entity_type=entity_type,
        entries=entries,
        participant_id=participant.participant_id,
        site_code=participant.site.code,
        reason=reason,
        sensitivity=sensitivity,
    )
    return _insert(events) if events else []


def diff(instance: Model, new_values: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, old, new) for each value that actually changes."""
    changes = []
    for name, new in new_values.items():
        old = getattr(instance, name)
        if jsonable(old) != jsonable(new):
            changes.append((name, old, new))
    return changes
