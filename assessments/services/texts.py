"""Instrument text packs, written: loading a site's validated wording of one instrument version in one language
(reads: ``assessments.texts``; the format: ``assessments.text_packs``)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import transaction

from assessments.library import instrument_get
from assessments.models import InstrumentText
from assessments.services._actors import account_of
from assessments.text_packs import TextPackError, parse_text_pack
from assessments.texts import may_load_instrument_texts, site_languages
from audit.models import AuditEvent
from audit.services import audit_record
from participants.access import Actor
from trialsite.errors import PermissionDeniedError


@transaction.atomic
def instrument_text_load(*, data: Any, source: str, by: Actor) -> tuple[InstrumentText, bool]:
    """Validate a text pack and store it as a new, immutable pack version. Returns the row and whether it was
    created.

    Refused with TextPackError (every problem with its JSON path; nothing stored) when the pack does not fit the
    instrument version it names, declares a language the site does not offer, or reuses a loaded pack version with
    other wording: a pack is never replaced, so the wording a response was answered under stays readable. New
    wording is a new ``version``; it is used for questionnaires not started yet. Loading the same file again stores
    and audits nothing and returns the stored row."""
    if not may_load_instrument_texts(by):
        raise PermissionDeniedError("only an administrator may load instrument texts")
    pack = parse_text_pack(
        data,
        instrument_lookup=instrument_get,
        languages=site_languages(),
        allow_placeholder=bool(settings.DEBUG),
    )
    content = json.loads(json.dumps(data))
    existing = InstrumentText.objects.filter(
        instrument_code=pack.instrument,
        instrument_version=pack.instrument_version,
        language=pack.language,
        version=pack.version,
    ).first()
    if existing is not None:
        if existing.content == content:
            return existing, False
        raise TextPackError(
            [
                f"version: {pack.instrument} v{pack.instrument_version} ({pack.language}) text version {pack.version} "
                "is already loaded with other wording; a loaded pack is never replaced: bump 'version'"
            ]
        )
    superseded = (
        InstrumentText.objects.filter(
            instrument_code=pack.instrument, instrument_version=pack.instrument_version, language=pack.language
        )
        .order_by("-loaded_at", "-id")
        .first()
    )
    row = InstrumentText.objects.create(
        instrument_code=pack.instrument,
        instrument_version=pack.instrument_version,
        language=pack.language,
        version=pack.version,
        content=content,
        placeholder=pack.placeholder,
        source=source[:300],
        loaded_by=account_of(by),
    )
    changes: list[tuple[str, object, object]] = [
        ("instrument", None, f"{pack.instrument} v{pack.instrument_version}"),
        ("language", None, pack.language),
        ("version", None, pack.version),
        ("source", None, row.source),
        ("citation", None, pack.citation),
    ]
    if pack.placeholder:
        changes.append(("placeholder", None, True))
    if superseded is not None:
        changes.append(("supersedes", None, f"text version {superseded.version} (pack {superseded.pk})"))
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="instrument_text",
        entity_id=row.pk,
        changes=changes,
        reason="placeholder wording for the demo" if pack.placeholder else None,
    )
    return row, True
