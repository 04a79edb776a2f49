"""Add the shipped protocols' ``blinded_schedule`` declaration to their stored versions (scheduling/migrations/_declare.py):
blinded roles' schedule views and blinded exports read it."""

from django.db import migrations

from scheduling.migrations._declare import declare_shipped_key


declare = declare_shipped_key("blinded_schedule")


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0009_declare_prohibited_medications")]

    operations = [migrations.RunPython(declare, migrations.RunPython.noop)]
