"""Add the dosing-session declarations (vital-signs timepoints and alert thresholds) to the stored versions of the
shipped illustrative protocols.

Stored versions are otherwise never edited: this adds a declaration the shipped files gained, and changes nothing a
schedule was computed from (visits, anchors, windows, arms). A version a site loaded itself is left alone, and so is a
shipped one that already declares its dosing session."""

import json

from django.db import migrations

CODES = ("mapp-v1", "mapp-v2", "samati-v1", "samati-v2")


def add_dosing_session(apps, schema_editor):
    from scheduling.protocol import shipped_protocol_paths

    ProtocolVersion = apps.get_model("scheduling", "ProtocolVersion")
    for path in shipped_protocol_paths():
        if path.stem not in CODES:
            continue
        shipped = json.loads(path.read_text(encoding="utf-8"))
        declaration = shipped.get("dosing_session")
        if declaration is None:
            continue
        for row in ProtocolVersion.objects.filter(code=shipped["code"], version=shipped["version"]):
            if "dosing_session" in row.definition:
                continue
            row.definition = {**row.definition, "dosing_session": declaration}
            row.save(update_fields=["definition"])


def remove_dosing_session(apps, schema_editor):
    ProtocolVersion = apps.get_model("scheduling", "ProtocolVersion")
    for row in ProtocolVersion.objects.filter(code__in=CODES):
        if "dosing_session" in row.definition:
            row.definition = {k: v for k, v in row.definition.items() if k != "dosing_session"}
            row.save(update_fields=["definition"])


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0007_visit_site_study")]

    operations = [migrations.RunPython(add_dosing_session, remove_dosing_session)]
