"""The API's operations from the live OpenAPI schema, and their path parameters filled from seeded objects.

A test describes what it seeded as records by noun (``{"visit": [{"id": "12", "code": "BASELINE"}]}``) and the
resolver fills each parameter by its name: ``visit_id`` is the ``id`` of a visit, ``site_code`` the ``code`` of a site,
and a bare ``id``/``pk``/``code`` takes its noun from the path segment before it (``/instruments/{code}/``). A
parameter it cannot name is reported, never guessed, so a new endpoint cannot pass untested.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Mapping, Sequence

Records = Mapping[str, Sequence[Mapping[str, str]]]

# The noun behind a collection segment of a path.
COLLECTIONS = {
    "participants": "participant",
    "visits": "visit",
    "responses": "response",
    "safety-alerts": "alert",
    "adverse-events": "adverse_event",
    "dosing-sessions": "dosing_session",
    "vital-signs": "vital_sign",
    "concomitant-medications": "concomitant_medication",
    "medication-overrides": "medication_override",
    "treatment-guesses": "treatment_guess",
    "alerts": "alert",
    "administrations": "administration",
    "notifications": "notification",
    "links": "link",
    "studies": "study",
    "sites": "site",
    "rooms": "room",
    "arms": "arm",
    "criteria": "criterion",
    "consent-documents": "consent_document",
    "deviations": "deviation",
    "memberships": "membership",
    "freezes": "freeze",
    "instruments": "instrument",
    "export": "export",
}
# Parameters named for what they are rather than whose (``{token}`` is a link's token).
BARE = {"token": ("link", "token")}
# Names that say nothing of their noun: the path segment before them does (``/instruments/{code}/``).
GENERIC = {"id", "pk", "code", "name", "number"}
PARAM = re.compile(r"\{(\w+)\}")


def load_schema(client) -> dict:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200, response.content[:300]
    return json.loads(response.content)


def operations(schema: dict, method: str = "get") -> Iterator[tuple[str, dict]]:
    for path, ops in sorted(schema["paths"].items()):
        if method in ops:
            yield path, ops[method]


def path_params(path: str) -> list[str]:
    return PARAM.findall(path)


def _noun_before(path: str, name: str) -> str | None:
    head = path.split("{" + name + "}", 1)[0].rstrip("/").split("/")
    for segment in reversed(head):
        if segment and "{" not in segment:
            return COLLECTIONS.get(segment)
    return None


def source(path: str, name: str, records: Records) -> tuple[str, str] | None:
    """(noun, attribute) that fills parameter ``name`` of ``path``."""
    if name in BARE:
        return BARE[name]
    if name not in GENERIC:
        for noun in sorted(set(COLLECTIONS.values()) | set(records), key=len, reverse=True):
            if name.startswith(noun + "_"):
                attr = name[len(noun) + 1 :]
                return noun, "id" if attr == "pk" else attr
    noun = _noun_before(path, name)
    return (noun, "id" if name == "pk" else name) if noun else None


def unresolved(path: str, records: Records) -> list[str]:
    """The path parameters of ``path`` that the records cannot fill."""
    missing = []
    for name in path_params(path):
        found = source(path, name, records)
        if found is None or not [r for r in records.get(found[0], ()) if found[1] in r]:
            missing.append(name)
    return missing


def fillings(path: str, records: Records, *, limit: int = 6) -> list[dict[str, str]]:
    """Every way (up to ``limit``) to fill the path's parameters from the records. Parameters served by one noun are
    filled from the same record (``/export/{dataset}.{fmt}`` takes the pair of one export record)."""
    names = path_params(path)
    if not names:
        return [{}]
    sources = {name: source(path, name, records) for name in names}
    if any(s is None for s in sources.values()):
        return []
    by_noun: dict[str, list[str]] = {}
    for name, (noun, _attr) in sources.items():  # type: ignore[misc]
        by_noun.setdefault(noun, []).append(name)
    choices = []
    for noun, noun_params in by_noun.items():
        attrs = {name: sources[name][1] for name in noun_params}  # type: ignore[index]
        options = [
            {name: r[attr] for name, attr in attrs.items()}
            for r in records.get(noun, ())
            if all(a in r for a in attrs.values())
        ]
        if not options:
            return []
        choices.append(options)
    combos = [
        dict(itertools.chain.from_iterable(part.items() for part in combo)) for combo in itertools.product(*choices)
    ]
    return combos[:limit]


def fill(path: str, values: Mapping[str, str]) -> str:
    return PARAM.sub(lambda m: values[m.group(1)], path)


def describe(path: str, values: Mapping[str, str], records: Records) -> str:
    """The seeded objects behind filled parameters, by their records' ``label`` (for failure messages)."""
    parts = []
    for name, value in values.items():
        found = source(path, name, records)
        label = (
            next(
                (r.get("label") for r in records.get(found[0], ()) if r.get(found[1]) == value and "label" in r),
                None,
            )
            if found
            else None
        )
        if label:
            parts.append(f"{name}: {label}")
    return f" ({'; '.join(parts)})" if parts else ""
