"""Add the shipped protocols' ``unblinding`` declaration (the role of the second person who approves unblinding) to
their stored versions.

Stored versions are otherwise never edited. This adds a declaration the versions lacked (what the shipped file of the
same code and version now declares), leaving every visit, window and phase as it was, so no participant's plan
moves; unblinding reads it. A stored version with no shipped file of its code and version, or one that already
declares it, is left alone."""

import json

from django.db import migrations

KEY = "unblinding"


def declare(apps, schema_editor):
    from scheduling.protocol import ProtocolError, parse_protocol, shipped_protocol_paths

    ProtocolVersion = apps.get_model("scheduling", "ProtocolVersion")
    shipped = {}
    for path in shipped_protocol_paths():
        data = json.loads(path.read_text(encoding="utf-8"))
        if KEY in data:
            shipped[(data.get("code"), data.get("version"))] = data[KEY]
    for row in ProtocolVersion.objects.all():
        items = shipped.get((row.code, row.version))
        if items is None or KEY in row.definition:
            continue
        # A JSON column keeps no key order, so the key is simply added.
        definition = {**row.definition, KEY: items}
        try:
            # Checked against every instrument code a stored version may name: only the added key is new here.
            parse_protocol(definition, known_instruments=_instrument_codes(row.definition))
        except ProtocolError:
            continue
        row.definition = definition
        row.save(update_fields=["definition"])


def _instrument_codes(definition):
    visits = list(definition.get("common_visits", []))
    for arm in definition.get("arms", {}).values():
        visits += arm.get("visits", [])
    return {i["code"] for v in visits for i in v.get("instruments", [])}


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0010_declare_blinded_schedule")]

    operations = [migrations.RunPython(declare, migrations.RunPython.noop)]
