"""Protocol versions: storing a validated protocol definition, audited. Stored versions are never edited."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_record
from participants.access import Actor
from scheduling import hooks, selectors
from scheduling.models import ProtocolVersion
from scheduling.protocol import ProtocolError, load_protocol_file, shipped_protocol_paths
from scheduling.services._actors import _user_or_none


@transaction.atomic
def protocol_version_load(*, path: str | Path, by: Actor = None) -> ProtocolVersion:
    """Validate a protocol file and store it as a new version. Raises ProtocolError (nothing stored) when invalid.
    The file may name any instrument of the library, a site's own loaded instruments included."""
    protocol = load_protocol_file(path, known_instruments=hooks.known_instrument_codes(stored=True))
    if ProtocolVersion.objects.filter(code=protocol.code, version=protocol.version).exists():
        raise ProtocolError(
            [f"version: {protocol.code} version {protocol.version} is already loaded; bump 'version' to change it"],
            str(path),
        )
    row = ProtocolVersion.objects.create(
        code=protocol.code,
        version=protocol.version,
        title=protocol.title,
        definition=dict(protocol.raw),
        source=Path(path).name,
        loaded_by=_user_or_none(by),
    )
    _audit_stored(row, by=by)
    return row


@transaction.atomic
def protocol_version_ensure(*, code: str, by: Actor) -> ProtocolVersion | None:
    """The latest stored version of ``code``, storing the shipped file of that name first when no version is stored
    yet (audited), so a fresh database generates visits with no manual loading step. None when ``code`` is neither
    stored nor shipped. Only writers call this; reads use ``selectors.protocol_version_latest``."""
    row = selectors.protocol_version_latest(code)
    if row is not None:
        return row
    path = next((p for p in shipped_protocol_paths() if p.stem == code), None)
    if path is None:
        return None
    protocol = load_protocol_file(path)
    row, created = ProtocolVersion.objects.get_or_create(
        code=protocol.code,
        version=protocol.version,
        defaults={
            "title": protocol.title,
            "definition": dict(protocol.raw),
            "source": path.name,
            "loaded_by": _user_or_none(by),
        },
    )
    if created:
        _audit_stored(row, by=by, reason="shipped protocol stored on first use")
    return row


def _audit_stored(row: ProtocolVersion, *, by: Actor, reason: str | None = None) -> None:
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="protocol_version",
        entity_id=row.pk,
        changes=[("code", None, row.code), ("version", None, row.version), ("source", None, row.source)],
        reason=reason,
    )
