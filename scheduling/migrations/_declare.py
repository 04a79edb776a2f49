"""Shared by the migrations that add a shipped protocol's new top-level declaration to its stored versions (0009
onwards). Stored versions are otherwise never edited: only the key is added, what the shipped file of the same code
and version now declares, so no participant's plan moves. A stored version with no shipped file of its code and
version, or one that already declares the key, is left alone. (Not a migration itself: the loader skips names that
start with an underscore.)"""

import json


def declare_shipped_key(key: str):
    """The RunPython function that adds ``key``."""

    def declare(apps, schema_editor):
        from scheduling.protocol import ProtocolError, parse_protocol, shipped_protocol_paths

        ProtocolVersion = apps.get_model("scheduling", "ProtocolVersion")
        shipped = {}
        for path in shipped_protocol_paths():
            data = json.loads(path.read_text(encoding="utf-8"))
            if key in data:
                shipped[(data.get("code"), data.get("version"))] = data[key]
        for row in ProtocolVersion.objects.all():
            items = shipped.get((row.code, row.version))
            if items is None or key in row.definition:
                continue
            # A JSON column keeps no key order, so the key is simply added.
            definition = {**row.definition, key: items}
            try:
                # Checked against every instrument code a stored version may name: only the added key is new here.
                parse_protocol(definition, known_instruments=_instrument_codes(row.definition))
            except ProtocolError:
                continue
            row.definition = definition
            row.save(update_fields=["definition"])

    return declare


def _instrument_codes(definition):
    visits = list(definition.get("common_visits", []))
    for arm in definition.get("arms", {}).values():
        visits += arm.get("visits", [])
    return {i["code"] for v in visits for i in v.get("instruments", [])}
