"""Rooms of a site: created, changed and retired by an administrator, each change audited. A retired room keeps
its past bookings and takes no new ones; rooms are never deleted (visits and bookings point at them)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record, diff
from participants import access
from participants.access import Actor
from participants.models import Site
from scheduling.models import Room
from scheduling.services._actors import _user_or_none
from trialsite.errors import InvalidTransition, ServiceError


def _require_admin(by: Actor, what: str, site_id: int) -> None:
    # The system (a command, the demo seed) configures on its own authority; a person needs the administrator role.
    if by is not None:
        access.require_configure(by, what, site_id=site_id)


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ServiceError("a room needs a name", field_errors={"name": ["required"]})
    if len(name) > Room.NAME_MAX_LENGTH:
        raise ServiceError(
            "the room name is too long", field_errors={"name": [f"at most {Room.NAME_MAX_LENGTH} characters"]}
        )
    return name


def _save_unique(room: Room, site: Site, **kwargs: Any) -> None:
    """Save ``room``; a name another room of the site already has (even one saved a moment ago) is a 400."""
    name = room.name
    if Room.objects.filter(site_id=site.pk, name=name).exclude(pk=room.pk).exists():
        raise ServiceError(f"room {name!r} exists at {site.code}", field_errors={"name": ["already exists"]})
    try:
        with transaction.atomic():
            room.save(**kwargs)
    except IntegrityError as exc:
        raise ServiceError(f"room {name!r} exists at {site.code}", field_errors={"name": ["already exists"]}) from exc


@transaction.atomic
def room_create(*, site: Site, name: str, overnight_capable: bool = False, by: Actor) -> Room:
    """A new room at ``site``, in use from now on."""
    _require_admin(by, "create rooms", site.pk)
    room = Room(site=site, name=_clean_name(name), overnight_capable=overnight_capable)
    _save_unique(room, site)
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="room",
        entity_id=room.pk,
        site_code=site.code,
        changes=[("name", None, room.name), ("overnight_capable", None, overnight_capable)],
    )
    return room


@transaction.atomic
def room_update(
    *,
    room: Room,
    by: Actor,
    name: str | None = None,
    overnight_capable: bool | None = None,
    active: bool | None = None,
    reason: str | None = None,
) -> Room:
    """Rename a room, or change whether it takes overnight stays or is in use; only the values given change.
    A retired room is not changed any more."""
    room = Room.objects.select_for_update(of=("self",)).select_related("site").get(pk=room.pk)
    _require_admin(by, "change rooms", room.site_id)
    if room.retired_at is not None:
        raise InvalidTransition(
            f"room {room.name} is retired and cannot be changed", field_errors={"room": ["retired room"]}
        )
    wanted: dict[str, Any] = {}
    if name is not None:
        wanted["name"] = _clean_name(name)
    if overnight_capable is not None:
        wanted["overnight_capable"] = overnight_capable
    if active is not None:
        wanted["active"] = active
    changes = diff(room, wanted)
    if not changes:
        return room
    for field, _, value in changes:
        setattr(room, field, value)
    _save_unique(room, room.site, update_fields=[field for field, _, _ in changes])
    audit_record(
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="room",
        entity_id=room.pk,
        site_code=room.site.code,
        changes=changes,
        reason=reason,
    )
    return room


@transaction.atomic
def room_retire(*, room: Room, reason: str, by: Actor) -> Room:
    """Take a room out of use for good: it takes no new bookings; the bookings it has stay as they are."""
    room = Room.objects.select_for_update(of=("self",)).select_related("site").get(pk=room.pk)
    _require_admin(by, "retire rooms", room.site_id)
    if not (reason and reason.strip()):
        raise ServiceError("retiring a room needs a reason", field_errors={"reason": ["required"]})
    if room.retired_at is not None:
        raise InvalidTransition(f"room {room.name} is already retired", field_errors={"room": ["already retired"]})
    was_active = room.active
    room.retired_at, room.retired_by, room.active = timezone.now(), _user_or_none(by), False
    room.save(update_fields=["retired_at", "retired_by", "active"])
    audit_record(
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="room",
        entity_id=room.pk,
        site_code=room.site.code,
        changes=[("retired_at", None, room.retired_at), ("active", was_active, False)],
        reason=reason,
    )
    return room
