"""The audit trail resists whoever can write to its database: the chain is keyed (the key is not in the database),
signed checkpoints outside the database catch rows cut from its tail, and TRUNCATE is refused."""

from __future__ import annotations

import importlib
import json

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.db.models import F

from audit import tasks
from audit.chain import GENESIS, hashed_fields, key_id, link_hash, unkeyed_event_hash
from audit.checkpoints import checkpoint_path
from audit.keys import audit_key
from audit.models import AuditEvent
from audit.rekey import rekey_chain
from audit.sequencer import chain_pending
from audit.verify import verify_all, verify_chain
from trialsite.beat import BEAT_SCHEDULE

pytestmark = pytest.mark.django_db
# SET LOCAL outlives the savepoint of a nested atomic block: the tamperer switches the triggers back on when done.
ORIGIN = "SET LOCAL session_replication_role = origin"


def rewrite_chain(new_hash, *, change: tuple[int, str, str] | None = None) -> None:
    """What an attacker with write access to the database does: trigger bypassed, one row's content changed, and
    every hash from the first row on recomputed with ``new_hash(prev, event)`` so the chain is consistent again."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        if change:
            victim_id, column, value = change
            cursor.execute(f"UPDATE audit_auditevent SET {column} = %s WHERE id = %s", [value, victim_id])
        prev = GENESIS
        for event in AuditEvent.objects.order_by(F("seq").asc(nulls_last=True), "id"):
            digest = new_hash(prev, event)
            cursor.execute(
                "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE id = %s", [prev, digest, event.id]
            )
            prev = digest
        cursor.execute(ORIGIN)


def delete_rows(ids: list[int]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM audit_auditevent WHERE id = ANY(%s)", [ids])
        cursor.execute(ORIGIN)


def unkeyed(prev: str, event: AuditEvent) -> str:
    return unkeyed_event_hash(prev, hashed_fields(event))


def unkeyed_chain_holds() -> bool:
    prev = GENESIS
    for event in AuditEvent.objects.order_by("id"):
        if event.prev_hash != prev or unkeyed_event_hash(prev, hashed_fields(event)) != event.hash:
            return False
        prev = event.hash
    return True


@pytest.mark.parametrize(
    "forger",
    [
        pytest.param(unkeyed, id="plain-sha256"),
        pytest.param(lambda prev, event: link_hash(b"a guessed key", prev, event), id="wrong-key"),
    ],
)
def test_a_row_changed_and_the_whole_chain_recomputed_without_the_key_is_caught(make_participant, capsys, forger):
    make_participant("enrolled")
    call_command("audit_verify")
    assert "audit chain intact" in capsys.readouterr().out
    victim = AuditEvent.objects.filter(field="status").order_by("id")[1]
    first = AuditEvent.objects.order_by("id").first()

    rewrite_chain(forger, change=(victim.id, "new_value", '"completed"'))

    victim.refresh_from_db()
    assert victim.new_value == "completed"
    if forger is unkeyed:
        assert unkeyed_chain_holds(), "the forgery is a consistent chain: the unkeyed verifier would call it intact"
    # The first recomputed row is the first one that fails: no hash can be recomputed without the key.
    with pytest.raises(CommandError, match=f"broken at event {first.id}: content does not match its keyed hash"):
        call_command("audit_verify")


def test_the_key_is_not_in_the_database(make_participant):
    make_participant("consented")
    chain_pending()
    key = audit_key().decode()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditevent t WHERE t::text LIKE %s", [f"%{key}%"])
        assert cursor.fetchone()[0] == 0
    event = AuditEvent.objects.order_by("id").last()
    assert event.hash == link_hash(audit_key(), event.prev_hash, event)
    assert event.hash != unkeyed_event_hash(event.prev_hash, hashed_fields(event))


def test_deleted_tail_rows_are_caught_against_the_checkpoint(make_participant, capsys):
    make_participant("randomized")
    with time_machine.travel("2026-12-03 10:00Z", tick=False):
        call_command("audit_checkpoint")
    assert "checkpoint written" in capsys.readouterr().out
    [line] = checkpoint_path().read_text().splitlines()
    record = json.loads(line)
    events = list(AuditEvent.objects.order_by("id"))
    assert (record["head_id"], record["head_hash"], record["count"]) == (events[-1].id, events[-1].hash, len(events))
    assert record["at"] == "2026-12-03T10:00:00+00:00" and record["key_id"] == key_id(audit_key())

    tail = [event.id for event in events[-3:]]
    delete_rows(tail)

    assert not AuditEvent.objects.filter(id__in=tail).exists()
    assert verify_chain().ok, "a chain cut at its tail still links: only the checkpoint shows the cut"
    with pytest.raises(
        CommandError, match=f"event {tail[-1]} is missing; the chain .* rows were deleted from its tail"
    ):
        call_command("audit_verify")
    # A row appended afterwards does not hide the cut.
    make_participant("screening")
    result = verify_all()
    assert result.broken_id is None and not result.ok
    assert f"event {tail[-1]} is missing" in result.checkpoint_problems[0]


def test_even_with_the_key_a_rewritten_chain_differs_from_the_checkpoint(make_participant):
    """Someone holding the key who removes a row and re-links everything after it still cannot match a checkpoint
    already written outside the database."""
    make_participant("enrolled")
    call_command("audit_checkpoint")
    head = AuditEvent.objects.order_by("id").last()
    first = AuditEvent.objects.order_by("id").first()
    delete_rows([first.id])
    rewrite_chain(lambda prev, event: link_hash(audit_key(), prev, event))
    result = verify_all()
    assert result.broken_id is None and result.checked == AuditEvent.objects.count()
    assert result.checkpoint_problems == [
        f"checkpoint line 1 ({json.loads(checkpoint_path().read_text())['at']}): event {head.id} no longer has the "
        "hash this checkpoint recorded (the chain was rewritten)"
    ]


def test_a_checkpoint_whose_signature_fails_is_reported(make_participant, settings):
    make_participant("consented")
    call_command("audit_checkpoint")
    path = checkpoint_path()
    record = json.loads(path.read_text())
    # Moving the checkpoint back to fit a shortened chain breaks its signature.
    path.write_text(json.dumps({**record, "count": record["count"] - 2}) + "\n")
    with pytest.raises(CommandError, match="checkpoint line 1: signature does not match"):
        call_command("audit_verify")
    # A checkpoint signed under another key is named as such.
    settings.AUDIT_KEY = "another key of at least thirty-two characters"
    path.write_text(json.dumps(record) + "\n")
    result = verify_all()
    assert result.checkpoint_problems == [f"checkpoint line 1: signed under another key (key id {record['key_id']})"]
    assert result.broken_id == AuditEvent.objects.order_by("id").first().id


def test_the_beat_task_writes_a_checkpoint_when_the_head_moved(make_participant, capsys):
    assert BEAT_SCHEDULE["audit-checkpoint"]["task"] == tasks.checkpoint.name == "audit.checkpoint"
    make_participant("screening")
    head = AuditEvent.objects.order_by("id").last()
    assert tasks.checkpoint() == head.id
    assert tasks.checkpoint() is None, "the head has not moved: nothing written"
    make_participant("screening")
    new_head = AuditEvent.objects.order_by("id").last()
    assert tasks.checkpoint() == new_head.id
    lines = [json.loads(line) for line in checkpoint_path().read_text().splitlines()]
    assert [(line["head_id"], line["count"]) for line in lines] == [
        (head.id, AuditEvent.objects.filter(id__lte=head.id).count()),
        (new_head.id, AuditEvent.objects.count()),
    ]
    call_command("audit_verify")
    assert "2 checkpoints match" in capsys.readouterr().out


def test_truncate_is_refused(make_participant):
    make_participant("consented")
    before = AuditEvent.objects.count()
    for statement in ("TRUNCATE audit_auditevent", "TRUNCATE audit_auditevent CASCADE"):
        with pytest.raises(DatabaseError, match="TRUNCATE refused"), transaction.atomic(), connection.cursor() as cur:
            # The test's own inserts leave deferred foreign-key checks pending, which TRUNCATE would refuse first.
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute(statement)
    assert AuditEvent.objects.count() == before > 0


def make_unkeyed(make_participant) -> str:
    """A database from before the key: its rows hashed with plain SHA-256 in id order, without their own MACs."""
    make_participant("enrolled")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE audit_auditevent SET mac = '', seq = NULL")
        cursor.execute(ORIGIN)
    rewrite_chain(unkeyed)
    assert unkeyed_chain_holds() and not verify_chain().ok
    return AuditEvent.objects.order_by("id").last().hash


def test_the_migrations_re_key_and_re_link_an_existing_unkeyed_chain(make_participant):
    old_head = make_unkeyed(make_participant)
    contents = list(AuditEvent.objects.order_by("id").values_list("id", "new_value", "reason"))
    from django.apps import apps

    with transaction.atomic(), connection.schema_editor(atomic=False) as editor:
        importlib.import_module("audit.migrations.0004_rekey_chain_with_audit_key").forwards(apps, editor)
        keyed_head = AuditEvent.objects.order_by("id").last().hash
        importlib.import_module("audit.migrations.0006_chain_rows_by_sequencer").forwards(apps, editor)

    assert verify_chain().ok
    *rows, keyed, linked = AuditEvent.objects.order_by("id")
    assert (keyed.entity_type, keyed.field, keyed.actor_username) == ("audit_chain", "key", "system")
    assert keyed.new_value == {"rows": len(contents), "old_head_hash": old_head, "old_chain": "intact"}
    # 0006 verified the keyed chain 0004 left, then gave every row its place, in id order, and its own MAC.
    assert linked.entity_type == "audit_chain" and "re-linked" in linked.reason
    assert linked.new_value == {"rows": len(contents) + 1, "old_head_hash": keyed_head, "old_chain": "intact"}
    assert [row.seq for row in [*rows, keyed, linked]] == list(range(1, len(contents) + 3))
    assert all(row.mac for row in rows)
    assert [(r.id, r.new_value, r.reason) for r in rows] == contents
    # The append-only trigger is back on after the re-key.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET reason = 'x' WHERE id = %s", [linked.id])


def test_re_keying_a_chain_that_was_already_broken_keeps_that_on_record(make_participant):
    make_unkeyed(make_participant)
    victim = AuditEvent.objects.order_by("id")[2]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE audit_auditevent SET reason = 'rewritten' WHERE id = %s", [victim.id])
        cursor.execute(ORIGIN)
    key = audit_key()
    with transaction.atomic():
        summary = rekey_chain(
            AuditEvent, unkeyed, lambda prev, event: link_hash(key, prev, event), note="test", mac_key=key
        )
    assert summary["old_chain"] == f"broken at event {victim.id}: content does not match its hash"
    assert AuditEvent.objects.order_by("id").last().new_value["old_chain"] == summary["old_chain"]
    assert verify_chain().ok


def test_the_key_is_replaced_with_audit_rekey(make_participant, settings, tmp_path, capsys):
    make_participant("enrolled")
    call_command("audit_checkpoint")
    old_key = audit_key()
    old_key_file = tmp_path / "old-key"
    old_key_file.write_bytes(old_key + b"\n")
    contents = list(AuditEvent.objects.order_by("id").values_list("id", "new_value"))
    settings.AUDIT_KEY = "the replacement key, at least thirty-two characters long"
    assert not verify_all().ok

    # The wrong old key: refused, nothing changed.
    wrong = tmp_path / "wrong-key"
    wrong.write_text("not the key the chain was made with, at all\n")
    with pytest.raises(CommandError, match="does not verify under the old key; nothing was changed"):
        call_command("audit_rekey", old_key_file=str(wrong))
    assert verify_all(key=old_key).ok

    call_command("audit_rekey", old_key_file=str(old_key_file))

    assert f"re-keyed {len(contents)} events" in capsys.readouterr().out
    result = verify_all()
    assert result.ok and result.checkpoints_checked == 1
    assert list(AuditEvent.objects.order_by("id").values_list("id", "new_value"))[:-1] == contents
    record = AuditEvent.objects.order_by("id").last()
    assert record.entity_type == "audit_chain" and record.new_value["old_chain"] == "intact"
    assert key_id(old_key) in record.reason
    archived = checkpoint_path().with_name(f"checkpoints-{key_id(old_key)}.jsonl")
    assert json.loads(archived.read_text())["key_id"] == key_id(old_key)
    assert json.loads(checkpoint_path().read_text())["head_id"] == record.id
