"""Text packs for tests, with obviously artificial wording ("ES test wording item SCS_01"): never an instrument's
real text. ``pack_data`` builds a valid pack of one instrument in one language; tests change it to break it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assessments.library import instrument_get
from assessments.models import InstrumentText
from assessments.text_packs import option_key

# The packs every database test starts with (tests/conftest.py), so that questionnaires are offered as in a
# deployment that loaded its texts. The PCL-5's English wording ships with its definition.
DEFAULT_PACKS = (
    ("SCS", "en"),
    ("SCS", "es"),
    ("SCS_SF", "en"),
    ("SCS_SF", "es"),
    ("LSAS_SR", "en"),
    ("LSAS_SR", "es"),
    ("PCL5", "es"),
)


def pack_data(code: str, language: str, *, version: str = "1.0") -> dict[str, Any]:
    """A valid pack for the current version of ``code``: every item, every option set with its end points labelled."""
    instrument = instrument_get(code)
    tag = language.upper()
    labels: dict[str, dict[str, str]] = {}
    for item in instrument.items:
        values = item.values
        labels.setdefault(
            option_key(instrument, item.code),
            {str(values[0]): f"{tag} test label {values[0]}", str(values[-1]): f"{tag} test label {values[-1]}"},
        )
    return {
        "instrument": code,
        "instrument_version": instrument.version,
        "language": language,
        "version": version,
        "source": {"citation": f"{tag} test citation for {code}"},
        "licence": f"{tag} test licence",
        "title": f"{tag} test title {code}",
        "instructions": f"{tag} test instructions {code}",
        "time_frame": f"{tag} test time frame {code}",
        "items": {item.code: f"{tag} test wording item {item.code}" for item in instrument.items},
        "option_labels": labels,
    }


def write_pack(directory: Path, data: dict[str, Any], name: str | None = None) -> Path:
    path = directory / (name or f"{data['instrument']}-{data['language']}-{data['version']}.json")
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def install_default_packs() -> None:
    """Store DEFAULT_PACKS directly (test setup, like a factory): the loading service has tests of its own. Packs
    already there are kept."""
    rows = [
        InstrumentText(
            instrument_code=code,
            instrument_version=data["instrument_version"],
            language=language,
            version=data["version"],
            content=data,
            source="tests",
        )
        for code, language in DEFAULT_PACKS
        for data in [pack_data(code, language)]
    ]
    # A world seeded once for a module (tests/test_reads_are_pure.py) already holds them.
    InstrumentText.objects.bulk_create(rows, ignore_conflicts=True)
