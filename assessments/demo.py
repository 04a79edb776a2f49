"""The demo's stand-in wording: placeholder text packs built from the neutral labels, so the demo's questionnaires
can be opened and answered. Only under DEBUG (the loading service refuses placeholders otherwise); every string is
marked "[xx placeholder]" and the participant pages show a banner. No instrument wording is written here."""

from __future__ import annotations

from django.conf import settings

from assessments import texts
from assessments.library import instruments_all
from assessments.services import instrument_text_load
from assessments.text_packs import placeholder_pack_data
from assessments.windows import SELF


def seed_demo_texts() -> list[str]:
    """Load a placeholder pack for every self-report instrument and site language that has no wording yet.
    Idempotent. Returns "CODE:language" of the packs loaded; nothing outside DEBUG."""
    if not settings.DEBUG:
        return []
    available = texts.text_available()
    loaded = []
    for instrument in instruments_all():
        if instrument.respondent != SELF:
            continue
        for language in texts.site_languages():
            if (instrument.code, language) in available:
                continue
            data = placeholder_pack_data(instrument, language)
            instrument_text_load(data=data, source="demo placeholder", by=None)
            loaded.append(f"{instrument.code}:{language}")
    return loaded
