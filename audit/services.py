"""Writing audit events. Called by every domain service inside its own transaction, so a write and its audit
row commit or roll back together."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from audit.chain import GENESIS, chain_hashes, hashed_fields
from audit.keys import audit_key
from audit.models import AuditEvent

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


# Arbitrary constant naming the advisory lock that serializes appends to the chain. The chain needs a total order;
# taking the lock before reading the last hash makes concurrent writers append one after another.
_CHAIN_LOCK_KEY = 748_215_001


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


def _lock_chain() -> str:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
    last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    return last or GENESIS


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
    """The unsaved rows of one action, one per changed field, not yet chained: what ``audit_record`` appends, built
    in one place so that a bulk writer (``manage.py seed_scale``) writes exactly the rows a service would."""
    actor = by if isinstance(by, get_user_model()) and by.pk else None
    username = actor_username if actor_username is not None else (actor.get_username() if actor else "system")
    return [
        AuditEvent(
            occurred_at=occurred_at,
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
        for field, old, new in changes
    ]


def _chain(prev: str, events: list[AuditEvent]) -> None:
    # Hashes in Python (pure functions of key, previous hash and content), set on the rows before their INSERT.
    hashes = chain_hashes(audit_key(), prev, [hashed_fields(event) for event in events])
    for event, event_hash in zip(events, hashes, strict=True):
        event.prev_hash, event.hash = prev, event_hash
        prev = event_hash


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
    """Append one event per changed field. ``changes`` holds (field, old, new) triples."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the writing service's transaction")
    prev = _lock_chain()
    events = audit_events_build(
        by=by,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        participant_id=participant_id,
        site_code=site_code,
        changes=changes,
        reason=reason,
        sensitivity=sensitivity,
        actor_username=actor_username,
        occurred_at=timezone.now(),
    )
    _chain(prev, events)  # then one INSERT for the action
    return AuditEvent.objects.bulk_create(events)


def audit_append_bulk(events: list[AuditEvent], *, batch_size: int = 5000) -> int:
    """Append rows built by ``audit_events_build`` (many actions, in the order given) to the chain under the chain
    lock, in batched INSERTs: the rows and hashes are those the services' own ``audit_record`` calls would have
    written one by one in that order. For bulk writers only (``manage.py seed_scale``); the caller's transaction
    holds the lock until it commits, so no other writer interleaves."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_append_bulk must run inside the writing transaction")
    prev = _lock_chain()
    for start in range(0, len(events), batch_size):
        batch = events[start : start + batch_size]
        _chain(prev, batch)
        AuditEvent.objects.bulk_create(batch)
        prev = batch[-1].hash
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


def diff(instance: Model, new_values: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, old, new) for each value that actually changes."""
    changes = []
    for name, new in new_values.items():
        old = getattr(instance, name)
        if jsonable(old) != jsonable(new):
            changes.append((name, old, new))
    return changes
