"""The blinding scan: a blinded rater's every API body and every export, in a study that hides safety data from its
raters, holds no safety record of the participants they rate (no dose, vital sign, adverse event, medication or
treatment guess) and no arm. The world is the one every read meets (tests/test_reads_are_pure.py): its safety records
carry unique strings, and every GET of the live OpenAPI schema is filled from its objects. The same scan as an
administrator finds every string, so the scan can fail.

The staff pages are scanned the same way by tests/dashboard/test_blinding_walk.py (arms) and
tests/dashboard/test_safety_walk.py (safety records)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import time_machine

from exports.datasets import DATASETS
from tests import test_reads_are_pure as shared
from tests.support import api_paths
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

# The shared world's fixtures: seeded once for the module, each test in a savepoint of it.
world = shared.world
_reads_setup = shared._reads_setup

# Strings written into the world's safety records by its seed, one per kind of record.
SENTINELS = {
    "adverse event": "palpitations",
    "adverse event follow-up": "discharged",
    "dosing session (kit)": "KIT-ZQ-4471",
    "vital sign": "VITALS-ZQ-NOTE",
    "medication": "sertraline",
    "medication override": "prescriber confirms the ZQ taper",
    "treatment guess": "GUESS-ZQ",
}
# Keys of the API's bodies that carry a safety record's values: present with a value only where a record is shown.
SAFETY_KEYS = {
    "verbatim_term": "adverse event",
    "kit_identifier": "dosing session (kit)",
    "initial_dose_mg": "dose",
    "systolic_bp": "vital sign",
    "heart_rate": "vital sign",
    "medication_class": "medication",
    "guess": "treatment guess",
    "confidence": "treatment guess",
}


def _keyed(value, path="") -> Iterator[str]:
    """What a JSON body shows through its keys: an arm (a key naming an arm, with a value) or a safety record (one of
    SAFETY_KEYS with a value)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if item not in (None, "", [], {}, False):
                if "arm" in key.lower().split("_"):
                    yield f"arm at {path}.{key}"
                if key in SAFETY_KEYS:
                    yield f"{SAFETY_KEYS[key]} at {path}.{key}"
            yield from _keyed(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _keyed(item, f"{path}[]")


def bodies(client, world) -> dict[str, bytes]:
    """URL -> body of every GET of the schema (every object of the seed) and every dataset's export."""
    records = world["records"]
    found = {}
    with time_machine.travel(world["moments"]["inside the baseline window"], tick=False):
        for path in shared.schema_gets(client):
            for values in api_paths.fillings(path, records, limit=10):
                url = api_paths.fill(path, values)
                response = client.get(url)
                found[url] = b"".join(response.streaming_content) if response.streaming else response.content
        for name in DATASETS:
            for fmt in ("csv", "json"):
                url = f"/api/v1/export/{name}.{fmt}"
                response = client.get(url)
                found[url] = b"".join(response.streaming_content) if response.streaming else response.content
    return found


def leaks(found: dict[str, bytes]) -> dict[str, list[str]]:
    out = {}
    for url, body in found.items():
        text = body.decode("utf-8", "replace")
        hits = [kind for kind, sentinel in SENTINELS.items() if sentinel in text]
        if url.startswith("/api/v1/") and body[:1] in (b"{", b"["):
            try:
                hits += list(_keyed(json.loads(body)))
            except ValueError:
                pass
        if hits:
            out[url] = hits
    return out


def test_a_blinded_rater_receives_no_safety_record_and_no_arm(world, api):
    rater = world["users"][Role.RATER.value]
    found = bodies(api(rater), world)
    assert len(found) >= 40
    assert not leaks(found), leaks(found)


def test_the_scan_finds_every_record_for_an_administrator(world, api):
    found = bodies(api(world["users"]["superuser"]), world)
    seen = {kind for hits in leaks(found).values() for kind in hits}
    assert set(SENTINELS) <= seen, set(SENTINELS) - seen
    kinds = {kind.split(" at ")[0] for kind in seen}
    assert {"arm", *SAFETY_KEYS.values()} <= kinds, {"arm", *SAFETY_KEYS.values()} - kinds
