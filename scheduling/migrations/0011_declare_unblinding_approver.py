"""Add the shipped protocols' ``unblinding`` declaration to their stored versions (scheduling/migrations/_declare.py):
unblinding reads it (the role of the second person who approves)."""

from django.db import migrations

from scheduling.migrations._declare import declare_shipped_key


declare = declare_shipped_key("unblinding")


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0010_declare_blinded_schedule")]

    operations = [migrations.RunPython(declare, migrations.RunPython.noop)]
