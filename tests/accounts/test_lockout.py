"""Sign-in lockout: LOGIN_FAILURE_LIMIT (5) wrong passwords are allowed and the 6th locks the account for LOGIN_LOCKOUT_MINUTES; the next
attempt is refused even with the right password, on a friendly page; the lockout is audited; it is counted per user
name, not per address, and it ends on time."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from axes.models import AccessAttempt

from audit.models import AuditEvent
from tests.dashboard.conftest import PASSWORD
from tests.factories import staff
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def sign_in(client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_the_sixth_attempt_after_five_wrong_passwords_is_refused_until_the_lockout_ends(client, alice, settings):
    assert settings.LOGIN_FAILURE_LIMIT == 5 and settings.LOGIN_LOCKOUT_MINUTES == 30
    with time_machine.travel(START, tick=False) as clock:
        for attempt in range(1, 6):
            response = sign_in(client, "alice", f"wrong password {attempt}")
            assert response.status_code == 200
            assert "Please enter a correct username and password" in response.content.decode()
        assert AccessAttempt.objects.get(username="alice").failures_since_start == 5
        assert not AuditEvent.objects.filter(entity_type="lockout").exists()

        # The 6th wrong password locks the account and says so.
        response = sign_in(client, "alice", "wrong password 6")
        assert response.status_code == 429
        body = response.content.decode()
        assert "<h1>Account locked for now</h1>" in body
        assert "Try again in 30 minutes." in body and "Signing in works again after 2026-11-02 09:30 UTC." in body
        lockout = AuditEvent.objects.get(entity_type="lockout")
        assert (lockout.action, lockout.entity_id, lockout.actor_username, lockout.actor_id) == (
            "login_failed",
            "alice",
            "alice",
            None,
        )
        assert (lockout.field, lockout.new_value) == ("failures", 6)

        # The next attempt, with the right password, is refused: no session, a friendly page, a failed sign-in
        # audited. Attempts while locked do not extend the lock.
        clock.shift(dt.timedelta(minutes=10))
        response = sign_in(client, "alice", PASSWORD)
        assert response.status_code == 429 and "_auth_user_id" not in client.session
        assert "Try again in 20 minutes." in response.content.decode()
        assert not AuditEvent.objects.filter(action="login", actor=alice).exists()
        assert AuditEvent.objects.filter(action="login_failed", entity_type="user", entity_id="alice").count() == 7
        assert AuditEvent.objects.filter(entity_type="lockout").count() == 1
        assert AccessAttempt.objects.get(username="alice").failures_since_start == 6

        # From another address too: the account is locked, not the address.
        assert sign_in(client, "alice", PASSWORD, address="198.51.100.9").status_code == 429

        # 30 minutes after the locking attempt the right password works again, and the count starts afresh.
        clock.shift(dt.timedelta(minutes=20, seconds=1))
        response = sign_in(client, "alice", PASSWORD)
        assert response.status_code == 302 and response["Location"] == "/home/"
        assert AuditEvent.objects.filter(action="login", actor=alice).count() == 1
        assert not AccessAttempt.objects.filter(username="alice").exists()


def test_one_locked_account_leaves_others_behind_the_same_address_signing_in(client, alice, pdx):
    staff("carol", Role.THERAPIST, pdx)
    with time_machine.travel(START, tick=False):
        for attempt in range(6):
            sign_in(client, "alice", f"wrong {attempt}")
        assert sign_in(client, "alice", PASSWORD).status_code == 429
        response = sign_in(client, "carol", PASSWORD)
        assert response.status_code == 302 and response["Location"] == "/home/"
        assert AuditEvent.objects.filter(action="login", actor_username="carol").count() == 1


def test_a_right_password_resets_the_count(client, alice):
    with time_machine.travel(START, tick=False):
        for attempt in range(4):
            sign_in(client, "alice", f"wrong {attempt}")
        assert sign_in(client, "alice", PASSWORD).status_code == 302
        assert not AccessAttempt.objects.filter(username="alice").exists()
        client.post("/logout/")
        for attempt in range(4):
            assert sign_in(client, "alice", f"wrong again {attempt}").status_code == 200
        assert sign_in(client, "alice", PASSWORD).status_code == 302
        assert not AuditEvent.objects.filter(entity_type="lockout").exists()


def test_the_admin_sign_in_is_locked_out_too(client, study_sites):
    from tests.factories import UserFactory

    UserFactory(username="root", is_superuser=True, is_staff=True)
    with time_machine.travel(START, tick=False):
        for attempt in range(6):
            client.post("/admin/login/", {"username": "root", "password": f"wrong {attempt}"})
        response = client.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 429 and "Account locked for now" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.get(entity_type="lockout").entity_id == "root"
