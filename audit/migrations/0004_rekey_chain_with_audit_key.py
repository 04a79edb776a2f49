"""Re-key the existing chain: rows hashed with plain SHA-256 get HMAC-SHA256 hashes under AUDIT_KEY.

Runs once, as the migration role (the table's owner: it switches the append-only trigger off for the re-key, inside
this migration's transaction). The old chain is verified first; the appended "audit_chain" event records the rows
re-keyed, the old head hash and whether the old chain was intact. An empty table (a new deployment) is left alone.
Backwards leaves the keyed hashes: the previous release would then report the chain broken."""

from django.db import migrations


def forwards(apps, schema_editor):
    from audit.chain import event_hash, hashed_fields, unkeyed_event_hash
    from audit.keys import audit_key
    from audit.rekey import rekey_chain

    key = audit_key()
    # The schemes of this migration's time, spelled out (0006 moves to the chain hash that covers each row's id).
    rekey_chain(
        apps.get_model("audit", "AuditEvent"),
        lambda prev, event: unkeyed_event_hash(prev, hashed_fields(event)),
        lambda prev, event: event_hash(key, prev, hashed_fields(event)),
        using=schema_editor.connection.alias,
        note="the chain was re-keyed: HMAC-SHA256 under the audit key replaces plain SHA-256",
        sequence=False,
    )


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_refuse_truncate")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
