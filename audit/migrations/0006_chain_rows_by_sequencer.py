"""Audit rows are chained after commit by the sequencer (audit/sequencer.py), not under a lock inside each write.

1. The append-only trigger allows one UPDATE per row: the sequencer's, giving a committed row its place (``seq``,
   ``prev_hash``, ``hash`` set from NULL) and changing nothing else. Every other UPDATE, and DELETE, is refused as
   before.
2. The existing chain is re-linked once (as 0004 did; the migration role owns the table and switches the trigger off
   inside this migration's transaction): it is verified under the previous scheme, every row gets its place in id
   order, its own MAC and a chain hash that also covers its id; an "audit_chain" event records the rows re-linked, the
   old head hash and whether the old chain was intact.
3. The checkpoints written before record head hashes of the old scheme: as ``audit_rekey`` does, the file is kept
   beside the new one as ``checkpoints-before-0006.jsonl`` (the next ``audit.checkpoint`` starts a new file).
Backwards puts the previous trigger back and leaves the rows as they are."""

from django.db import migrations

TRIGGER = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
    -- The one UPDATE allowed: the sequencer giving a committed row its place in the chain, once, nothing else changed.
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL AND NEW.hash IS NOT NULL
       AND NEW.prev_hash IS NOT NULL
       AND (to_jsonb(NEW) - 'seq' - 'prev_hash' - 'hash') = (to_jsonb(OLD) - 'seq' - 'prev_hash' - 'hash') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_auditevent is append-only: %% refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

PREVIOUS = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_auditevent is append-only: %% refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    from audit.chain import event_hash, hashed_fields, link_hash
    from audit.keys import audit_key
    from audit.rekey import rekey_chain

    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER)
    key = audit_key()
    summary = rekey_chain(
        apps.get_model("audit", "AuditEvent"),
        lambda prev, event: event_hash(key, prev, hashed_fields(event)),
        lambda prev, event: link_hash(key, prev, event),
        using=schema_editor.connection.alias,
        note="the chain was re-linked: rows are chained after commit, each hash covers the row's id",
        mac_key=key,
    )
    if summary["rows"]:
        _set_old_checkpoints_aside()


def _set_old_checkpoints_aside():
    from django.conf import settings

    from audit.checkpoints import checkpoint_path

    path = checkpoint_path(settings.AUDIT_CHECKPOINT_DIR)
    if path.exists():
        path.rename(path.with_name("checkpoints-before-0006.jsonl"))


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PREVIOUS)


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_audit_rows_chained_after_commit")]
    operations = [migrations.RunPython(forwards, backwards)]
