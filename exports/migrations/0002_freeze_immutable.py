"""On PostgreSQL, refuse any UPDATE of a freeze row in the database itself, so that no code path (admin, shell,
a bulk .update()) can change the recorded checksum or scope of a snapshot after it was taken."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION exports_freeze_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'export freezes are immutable';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER exports_freeze_no_update BEFORE UPDATE ON exports_exportfreeze
    FOR EACH ROW EXECUTE FUNCTION exports_freeze_immutable();
"""
DROP = """
DROP TRIGGER IF EXISTS exports_freeze_no_update ON exports_exportfreeze;
DROP FUNCTION IF EXISTS exports_freeze_immutable();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("exports", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
