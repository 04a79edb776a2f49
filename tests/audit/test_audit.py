"""The audit trail: every service writes it, the database refuses to rewrite it, and tampering is detected."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.sequencer import chain_pending
from audit.verify import verify_chain
from participants import services

pytestmark = pytest.mark.django_db


def test_a_participants_status_history_reads_back_in_order(alice, make_participant):
    """Each service's own events are checked in test_every_service_audits.py; here one participant's whole life, made
    through the services, reads back as one ordered history in an intact chain."""
    participant = make_participant("randomized")
    with transaction.atomic():
        services.participant_withdraw(
            participant=participant, level="stop_contact", reason="asked", date=dt.date(2026, 2, 1), by=alice
        )
    status_events = AuditEvent.objects.filter(
        participant_id=participant.participant_id, field="status", action="transition"
    ).order_by("id")
    assert [(e.old_value, e.new_value) for e in status_events] == [
        ("screening", "eligible"),
        ("eligible", "consented"),
        ("consented", "enrolled"),
        ("enrolled", "randomized"),
        ("randomized", "withdrawn"),
    ]
    assert {e.actor_username for e in status_events} == {"alice"}
    assert verify_chain().ok


def test_role_changes_and_logins_are_audited(client, pdx):
    from tests.factories import UserFactory
    from trialsite.roles import Role

    carol = UserFactory(username="carol")
    with transaction.atomic():
        services.membership_grant(user=carol, site=pdx, role=Role.RATER, by=None)
    assert AuditEvent.objects.filter(action="role_change", new_value="rater@PDX", entity_id=str(carol.pk)).exists()
    assert carol.groups.filter(name="rater").exists()

    assert client.post("/login/", {"username": "carol", "password": "correct horse battery staple"}).status_code == 302
    assert AuditEvent.objects.filter(action="login", actor=carol).count() == 1
    client.post("/logout/")
    assert client.post("/login/", {"username": "carol", "password": "wrong"}).status_code == 200
    failed = AuditEvent.objects.get(action="login_failed")
    assert failed.actor_username == "carol" and "wrong" not in str(failed.new_value) + failed.reason

    with transaction.atomic():
        services.membership_revoke(user=carol, site=pdx, role=Role.RATER, by=None, reason="left the study")
    event = AuditEvent.objects.get(action="role_change", old_value="rater@PDX")
    assert event.reason == "left the study" and not carol.groups.filter(name="rater").exists()


def test_database_refuses_update_and_delete_of_audit_rows(alice, make_participant):
    make_participant("screening")
    event = AuditEvent.objects.first()
    for statement in (
        f"UPDATE audit_auditevent SET reason = 'rewritten' WHERE id = {event.id}",
        f"DELETE FROM audit_auditevent WHERE id = {event.id}",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    event.refresh_from_db()
    assert event.reason == ""
    # Through the ORM too.
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(id=event.id).delete()
    assert AuditEvent.objects.filter(id=event.id).exists()


def tamper(sql: str, params) -> None:
    """Alter a row behind the application's back, as a superuser with the trigger bypassed."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def test_audit_verify_detects_a_row_altered_behind_the_applications_back(alice, make_participant, capsys):
    make_participant("enrolled")
    call_command("audit_verify")
    assert "audit chain intact" in capsys.readouterr().out
    victim = AuditEvent.objects.filter(field="status").order_by("id")[1]
    tamper("UPDATE audit_auditevent SET new_value = %s WHERE id = %s", ['"completed"', victim.id])
    with pytest.raises(CommandError, match=f"broken at event {victim.id}: content does not match"):
        call_command("audit_verify")


def test_audit_verify_detects_a_deleted_row(alice, make_participant):
    make_participant("consented")
    # In service the writer chains its rows right after its commit; this test's transaction never commits.
    chain_pending()
    victim = AuditEvent.objects.order_by("id")[3]
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [victim.id])
    result = verify_chain()
    assert not result.ok
    assert result.broken_id == AuditEvent.objects.filter(id__gt=victim.id).order_by("id").first().id
    assert "removed" in result.problem


def test_history_api_lists_changes_with_reasons(api, alice, make_participant):
    participant = make_participant("consented")
    api(alice).patch(
        f"/api/v1/participants/{participant.participant_id}/",
        {"contact": {"full_name": "New Name"}, "reason": "legal name change"},
        format="json",
    )
    history = api(alice).get(f"/api/v1/participants/{participant.participant_id}/history/").json()
    assert history[0]["field"] == "participant_id" and history[0]["new_value"] == participant.participant_id
    change = next(e for e in history if e["field"] == "full_name" and e["action"] == "update")
    assert (change["old_value"], change["new_value"], change["reason"], change["actor"]) == (
        "Test Person",
        "New Name",
        "legal name change",
        "alice",
    )
    assert [e["id"] for e in history] == sorted(e["id"] for e in history)
