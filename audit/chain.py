"""Keyed hash chain over audit events: pure functions of (key, previous hash, fields).

Two keyed MACs, both HMAC-SHA256 under the audit key (``settings.AUDIT_KEY``, never stored in the database):
- the row's own MAC (``content_mac``), written by the service in the same INSERT as the row: it covers the row's
  content from the moment it exists, before the row has a place in the chain;
- the chain hash (``link_hash``), written by the sequencer (audit/sequencer.py) when it gives a committed row its place
  ``seq``: the previous row's hash, the row's id and its content. The id is covered so that renumbering rows (which
  would reorder a participant's history, read in id order) breaks the chain.
Whoever can write to the database but does not hold the key cannot recompute either. Checkpoints (head id, head hash,
row count, time) are signed with the same key and kept outside the database (audit/checkpoints.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Protocol

GENESIS = "0" * 64


class _EventLike(Protocol):
    """What a row's hash covers (an AuditEvent, or the historical model in a migration)."""

    occurred_at: Any
    actor_id: Any
    actor_username: str
    action: str
    entity_type: str
    entity_id: str
    participant_id: str
    site_code: str
    field: str
    old_value: Any
    new_value: Any
    reason: str
    sensitivity: str


class _LinkedLike(_EventLike, Protocol):
    id: Any


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(key: bytes, prev_hash: str, fields: dict[str, Any]) -> str:
    """HMAC-SHA256 under ``key`` of the previous hash and the row's content."""
    payload = prev_hash + "\n" + canonical(fields)
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


def unkeyed_event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """The chain before it was keyed (plain SHA-256): read only to verify old rows once, before re-keying them."""
    payload = prev_hash + "\n" + canonical(fields)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def content_mac(key: bytes, fields: dict[str, Any]) -> str:
    """The row's own keyed MAC of its content (a distinct prefix, so it is never equal to a chain hash)."""
    payload = "row\n" + canonical(fields)
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


def link_fields(event: _LinkedLike) -> dict[str, Any]:
    """What a row's place in the chain covers: its content and its id."""
    return {**hashed_fields(event), "id": int(event.id)}


def link_hash(key: bytes, prev_hash: str, event: _LinkedLike) -> str:
    """The chain hash of ``event`` placed after the row whose hash is ``prev_hash``."""
    return event_hash(key, prev_hash, link_fields(event))


def key_id(key: bytes) -> str:
    """A public fingerprint of the key (written in checkpoints), so a checkpoint made under another key is told apart
    from a forged one. It reveals nothing about the key."""
    return hmac.new(key, b"trialsite audit key id", hashlib.sha256).hexdigest()[:16]


def sign(key: bytes, payload: dict[str, Any]) -> str:
    return hmac.new(key, canonical(payload).encode("utf-8"), hashlib.sha256).hexdigest()


def signature_ok(key: bytes, payload: dict[str, Any], signature: str) -> bool:
    return hmac.compare_digest(sign(key, payload), signature)


def hashed_fields(event: _EventLike) -> dict[str, Any]:
    """The content a row's hash covers, read back the same way it was written."""
    return {
        "occurred_at": event.occurred_at.isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_username": event.actor_username,
        "action": event.action,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "participant_id": event.participant_id,
        "site_code": event.site_code,
        "field": event.field,
        "old_value": event.old_value,
        "new_value": event.new_value,
        "reason": event.reason,
        "sensitivity": event.sensitivity,
    }
