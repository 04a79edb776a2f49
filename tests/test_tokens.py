from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_issue_token_prints_a_working_token(alice, make_participant, capsys):
    make_participant("screening")
    call_command("issue_token", "alice")
    key = capsys.readouterr().out.strip()
    assert len(key) == 40 and Token.objects.get(user=alice).key == key
    client = APIClient()
    assert client.get("/api/v1/participants/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    body = client.get("/api/v1/participants/").json()
    assert [p["participant_id"] for p in body["results"]] == ["MAP-PDX-001"]
    event = AuditEvent.objects.get(entity_type="api_token")
    assert key not in str(event.new_value)  # the key itself is never audited

    # A second token replaces the first.
    call_command("issue_token", "alice")
    new_key = capsys.readouterr().out.strip()
    assert new_key != key
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/participants/").status_code == 401


def test_issue_token_for_unknown_user_fails(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no active user named 'nobody'"):
        call_command("issue_token", "nobody")
