"""API tokens: printed once by issue_token, stored only as a hash, expiring (401 after), listed and revoked by their
owner on the account page (audited). Old plain-text tokens are gone."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import ApiToken
from audit.models import AuditEvent
from tests.dashboard.conftest import page_text

pytestmark = pytest.mark.django_db

ISSUED = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def issue(capsys, *args: str) -> str:
    call_command("issue_token", *args)
    return capsys.readouterr().out.strip()


def api_with(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_issue_token_prints_a_working_token_stored_only_as_a_hash(alice, make_participant, capsys):
    make_participant("screening")
    with time_machine.travel(ISSUED, tick=False):
        token = issue(capsys, "alice")
    assert len(token) == 43
    row = ApiToken.objects.get(user=alice)
    assert (row.prefix, row.created_at, row.expires_at) == (token[:8], ISSUED, ISSUED + dt.timedelta(days=90))
    assert row.last_used_at is None and row.revoked_at is None
    assert APIClient().get("/api/v1/participants/").status_code == 401

    with time_machine.travel(ISSUED + dt.timedelta(days=3), tick=False):
        body = api_with(token).get("/api/v1/participants/").json()
    assert [p["participant_id"] for p in body["results"]] == ["MAP-PDX-001"]
    row.refresh_from_db()
    assert row.last_used_at == ISSUED + dt.timedelta(days=3)
    event = AuditEvent.objects.get(entity_type="api_token", field="owner")
    assert (event.action, event.new_value, event.actor_username) == ("create", "alice", "manage.py issue_token")

    # A second token does not end the first: each lives until it expires or is revoked.
    second = issue(capsys, "alice", "--days", "7")
    assert second != token and ApiToken.objects.filter(user=alice).count() == 2
    assert api_with(token).get("/api/v1/participants/").status_code == 200
    assert api_with(second).get("/api/v1/participants/").status_code == 200


def test_the_database_holds_no_api_token_in_clear(alice, capsys):
    token = issue(capsys, "alice")
    assert api_with(token).get("/api/v1/participants/").status_code == 200
    # Every text column of the token table and of the audit trail, read raw: the token is in none of them.
    with connection.cursor() as cursor:
        for table in (ApiToken._meta.db_table, AuditEvent._meta.db_table):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608  # a model's own table name
            rows = cursor.fetchall()
            assert rows, table
            assert all(token not in str(value) for row in rows for value in row), table
        # The old table of plain-text keys is gone.
        assert "authtoken_token" not in connection.introspection.table_names(cursor)
    assert ApiToken.objects.get(user=alice).digest != token


def test_an_expired_token_answers_401(alice, capsys):
    with time_machine.travel(ISSUED, tick=False):
        token = issue(capsys, "alice", "--days", "1")
    with time_machine.travel(ISSUED + dt.timedelta(hours=23, minutes=59), tick=False):
        assert api_with(token).get("/api/v1/participants/").status_code == 200
    with time_machine.travel(ISSUED + dt.timedelta(days=1, seconds=1), tick=False):
        response = api_with(token).get("/api/v1/participants/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert response.json()["detail"] == "Token has expired."
    # The row is kept, as it was: an expired token is history, not deleted.
    row = ApiToken.objects.get(user=alice)
    assert row.expires_at == ISSUED + dt.timedelta(days=1) and row.revoked_at is None
    assert row.last_used_at == ISSUED + dt.timedelta(hours=23, minutes=59)


def test_unknown_and_malformed_tokens_answer_401(alice):
    response = api_with("not-a-token-at-all").get("/api/v1/participants/")
    assert response.status_code == 401 and response.json()["detail"] == "Invalid token."
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token two parts")
    assert client.get("/api/v1/participants/").status_code == 401
    assert not ApiToken.objects.exists()


def test_the_account_page_lists_issues_once_and_revokes_tokens(client, alice, bob, capsys):
    with time_machine.travel(ISSUED, tick=False):
        first = issue(capsys, "alice")
        bobs = issue(capsys, "bob")
        client.force_login(alice)
        body = page_text(client.get("/account/"))
        assert f"<code>{first[:8]}…</code>" in body and first not in body
        assert f"<code>{bobs[:8]}…</code>" not in body
        assert "2026-11-02 09:00 UTC" in body and "2027-01-31 09:00 UTC" in body and "never" in body

        # Issued from the page: shown on this answer only.
        response = client.post("/account/tokens/", {"days": "30"})
        body = page_text(response)
        new = ApiToken.objects.filter(user=alice).latest("id")
        shown = body.split('id="new-token" class="link-text" type="text" value="', 1)[1].split('"', 1)[0]
        assert shown[:8] == new.prefix and new.expires_at == ISSUED + dt.timedelta(days=30)
        assert shown not in page_text(client.get("/account/"))
        assert client.post("/account/tokens/", {"days": "0"}).status_code == 400
        assert ApiToken.objects.filter(user=alice).count() == 2

        # Revoked: 401 from then on, the row kept and marked, audited.
        row = ApiToken.objects.get(prefix=first[:8])
        response = client.post(f"/account/tokens/{row.pk}/revoke/")
        assert response.status_code == 302 and response["Location"] == "/account/"
        row.refresh_from_db()
        assert row.revoked_at == ISSUED
        response = api_with(first).get("/api/v1/participants/")
        assert response.status_code == 401 and response.json()["detail"] == "Token has been revoked."
        assert api_with(shown).get("/api/v1/participants/").status_code == 200
        assert "revoked" in page_text(client.get("/account/"))
        # Another user's token is not hers to revoke.
        bob_row = ApiToken.objects.get(user=bob)
        assert client.post(f"/account/tokens/{bob_row.pk}/revoke/").status_code == 404
    event = AuditEvent.objects.get(entity_type="api_token", field="revoked_at")
    assert (event.actor_id, event.entity_id) == (alice.pk, str(row.pk))
    bob_row.refresh_from_db()
    assert bob_row.revoked_at is None


def test_issue_token_refuses_unknown_users_and_bad_lifetimes(alice):
    with pytest.raises(CommandError, match="no active user named 'nobody'"):
        call_command("issue_token", "nobody")
    with pytest.raises(CommandError, match="A token lasts 1 to 366 days."):
        call_command("issue_token", "alice", "--days", "400")
    assert not ApiToken.objects.exists()
