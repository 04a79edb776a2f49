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
}


def _arm_keys(value, path="") -> Iterator[str]:
    """Paths of JSON keys naming an arm that carry a value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if "arm" in key.lower().split("_") and item not in (None, "", [], {}):
                yield f"{path}.{key}"
            yield from _arm_keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _arm_keys(item, f"{path}[]")


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
                hits += [f"arm at {key}" for key in _arm_keys(json.loads(body))]
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
    assert any(kind.startswith("arm at") for kind in seen)
