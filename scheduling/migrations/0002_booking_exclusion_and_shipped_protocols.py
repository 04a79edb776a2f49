"""PostgreSQL-only booking exclusion constraint, and the shipped protocols stored as version rows.

The exclusion constraint is what makes double-booking impossible under concurrency: two transactions that each checked
"no overlap" and then insert overlapping bookings of one therapist or room cannot both commit. It is added with raw
SQL on PostgreSQL only, because the embedded SQLite default has no GiST (there a single writer serializes anyway)."""

import json

from django.db import migrations

ADD_EXCLUSION = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE scheduling_booking ADD CONSTRAINT booking_no_overlap
    EXCLUDE USING gist (resource WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&);
"""
DROP_EXCLUSION = "ALTER TABLE scheduling_booking DROP CONSTRAINT IF EXISTS booking_no_overlap;"


def add_exclusion(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ADD_EXCLUSION)


def drop_exclusion(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_EXCLUSION)


def load_shipped(apps, schema_editor):
    from scheduling.protocol import ProtocolError, parse_protocol, shipped_protocol_paths

    ProtocolVersion = apps.get_model("scheduling", "ProtocolVersion")
    for path in shipped_protocol_paths():
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
    dependencies = [("scheduling", "0001_initial")]

    operations = [
        migrations.RunPython(add_exclusion, drop_exclusion),
        migrations.RunPython(load_shipped, migrations.RunPython.noop),
    ]
