"""Store the second shipped versions of the illustrative protocols (mapp-v2, samati-v2) as version rows, as 0002 did
for the first ones. Studies pinned to mapp-v1 or samati-v1 keep them: nothing stored is changed."""

import json

from django.db import migrations

CODES = ("mapp-v2", "samati-v2")


def load_v2(apps, schema_editor):
    from scheduling.protocol import ProtocolError, parse_protocol, shipped_protocol_paths

    ProtocolVersion = apps.get_model("scheduling", "ProtocolVersion")
    for path in shipped_protocol_paths():
        if path.stem not in CODES:
            continue
        try:
            protocol = parse_protocol(json.loads(path.read_text(encoding="utf-8")), source=path.name)
        except (ProtocolError, ValueError):
            continue  # reported by the scheduling.E001 system check; never store an invalid definition
        ProtocolVersion.objects.get_or_create(
            code=protocol.code,
            version=protocol.version,
            defaults={"title": protocol.title, "definition": dict(protocol.raw), "source": path.name},
        )


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0005_visit_needs_reschedule_idx")]

    operations = [migrations.RunPython(load_v2, migrations.RunPython.noop)]
