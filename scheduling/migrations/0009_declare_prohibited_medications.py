"""Add the shipped protocols' ``prohibited_medications`` declaration to their stored versions (scheduling/migrations/_declare.py):
the booking check of dosing sessions reads it."""

from django.db import migrations

from scheduling.migrations._declare import declare_shipped_key


declare = declare_shipped_key("prohibited_medications")


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0008_store_protocols_dosing_session")]

    operations = [migrations.RunPython(declare, migrations.RunPython.noop)]
