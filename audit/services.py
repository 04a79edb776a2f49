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
    now = timezone.now()
    actor = by if isinstance(by, get_user_model()) and by.pk else None
    username = actor_username if actor_username is not None else (actor.get_username() if actor else "system")
    events = [
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
        for field, old, new in changes
    ]
    # Hashes first, in Python (pure functions of key, previous hash and content); then one INSERT for the action.
    hashes = chain_hashes(audit_key(), prev, [hashed_fields(event) for event in events])
    for event, event_hash in zip(events, hashes, strict=True):
        event.prev_hash, event.hash = prev, event_hash
        prev = event_hash
    return AuditEvent.objects.bulk_create(events)


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
