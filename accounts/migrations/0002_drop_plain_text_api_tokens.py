"""API tokens were once stored in clear (rest_framework.authtoken). Their table is dropped, so every old key stops
working; staff get new tokens with ``manage.py issue_token`` (docs/api.md)."""

from django.db import migrations


def drop_old_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" in connection.introspection.table_names():
        cascade = " CASCADE" if connection.vendor == "postgresql" else ""
        schema_editor.execute(f"DROP TABLE authtoken_token{cascade}")
    schema_editor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_api_tokens_and_calendar_feeds")]

    operations = [migrations.RunPython(drop_old_tokens, migrations.RunPython.noop)]
