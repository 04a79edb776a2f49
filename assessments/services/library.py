"""The instrument library, written: loading a site's instrument version (reads: ``assessments.library``)."""

from __future__ import annotations

import json
from pathlib import Path

from django.db import transaction

from assessments.definitions import InstrumentError, load_instrument_file
from assessments.library import contract_errors, shipped_instruments
from assessments.models import InstrumentVersion
from assessments.services._actors import account_of
from audit.models import AuditEvent
from audit.services import audit_record
from participants.access import Actor


@transaction.atomic
def instrument_version_load(*, path: str | Path, by: Actor = None) -> InstrumentVersion:
    """Validate an instrument file and store it as a new version. Raises InstrumentError (with JSON paths, nothing
    stored) when the file is invalid, changes the shipped codes, or reuses a loaded version with other content.
    Loading the same file again stores and audits nothing and returns the stored version."""
    path = Path(path)
    instrument = load_instrument_file(path)
    errors: list[str] = []
    shipped = shipped_instruments().get(instrument.code)
    if shipped is not None:
        errors += contract_errors(instrument, shipped)
    existing = InstrumentVersion.objects.filter(code=instrument.code, version=instrument.version).first()
    if existing is not None:
        if existing.definition == json.loads(json.dumps(instrument.raw)):
            return existing
        errors.append(f"version: {instrument.code} version {instrument.version} is already loaded; bump 'version'")
    if errors:
        raise InstrumentError([f"{path.name}: {e}" for e in errors])
    row = InstrumentVersion.objects.create(
        code=instrument.code,
        version=instrument.version,
        definition=json.loads(json.dumps(instrument.raw)),
        source=path.name,
        loaded_by=account_of(by),
    )
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="instrument_version",
        entity_id=row.pk,
        changes=[("code", None, row.code), ("version", None, row.version), ("source", None, row.source)],
    )
    return row
