"""Every member of staff with a site role signs in at /login/, staff flag or not; / sends them home and everyone else
to the sign-in page; sign-in, failure and sign-out are audited; password change; the absolute session lifetime."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import override_settings

from audit.models import AuditEvent
from tests.dashboard.conftest import PASSWORD, page_text
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_root_sends_anonymous_visitors_to_the_sign_in_page(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    body = page_text(client.get("/login/"))
    assert '<label for="id_username">Username</label>' in body
    assert '<label for="id_password">Password</label>' in body
    assert '<a class="skip-link" href="#main">' in body and '<main id="main"' in body


def test_root_sends_signed_in_staff_home(client, alice):
    client.force_login(alice)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/home/"


def test_a_coordinator_without_the_staff_flag_signs_in_and_lands_on_home(client, alice):
    assert alice.is_staff is False and alice.is_superuser is False
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/home/"
    body = page_text(client.get(response["Location"]))
    assert "<h1>Today</h1>" in body
    assert '<span class="site" title="Site PDX">PDX</span>' in body  # the nav lists the user's sites
    assert "NYC" not in body
    event = AuditEvent.objects.filter(action="login").latest("id")
    assert (event.actor_id, event.entity_type, event.entity_id) == (alice.pk, "user", str(alice.pk))


def test_a_wrong_password_is_refused_and_audited(client, alice):
    response = client.post("/login/", {"username": "alice", "password": "wrong password entirely"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(action="login_failed")
    assert (event.actor_id, event.actor_username, event.entity_id) == (None, "alice", "alice")


def test_an_account_without_a_site_role_cannot_sign_in_and_root_sends_it_to_the_sign_in_page(client):
    UserFactory(username="nobody")
    response = client.post("/login/", {"username": "nobody", "password": PASSWORD})
    assert response.status_code == 200
    assert "This account holds no role at any study site." in response.content.decode()
    assert "_auth_user_id" not in client.session
    client.force_login(UserFactory(username="nobody"))
    assert client.get("/")["Location"] == "/login/"
    assert client.get("/home/")["Location"] == "/login/?next=/home/"


def test_a_superuser_without_roles_signs_in(client, study_sites):
    UserFactory(username="root", is_superuser=True)
    response = client.post("/login/", {"username": "root", "password": PASSWORD})
    assert response["Location"] == "/home/"
    body = page_text(client.get("/home/"))
    assert (
        '<span class="site" title="Site PDX">PDX</span>' in body
        and '<span class="site" title="Site NYC">NYC</span>' in body
    )


def test_pages_ask_anonymous_visitors_to_sign_in(client):
    assert client.get("/home/")["Location"] == "/login/?next=/home/"
    assert client.get("/password/")["Location"] == "/login/?next=/password/"
    assert client.get("/settings/language/")["Location"] == "/login/?next=/settings/language/"
    # An htmx request is told where to go instead of getting the sign-in page as a fragment.
    response = client.post("/alerts/1/acknowledge/", {"note": "x"}, headers={"HX-Request": "true"})
    assert response.status_code == 204 and response["HX-Redirect"] == "/login/"


def test_sign_out_is_a_post_and_is_audited(client, alice):
    client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/home/").status_code == 302
    assert AuditEvent.objects.filter(action="logout", actor=alice).count() == 1


def test_password_change(client, alice):
    client.force_login(alice)
    body = page_text(client.get("/password/"))
    assert "<h1>Change your password</h1>" in body
    new = "a much longer passphrase 2026"
    response = client.post(
        "/password/", {"old_password": PASSWORD, "new_password1": new, "new_password2": new}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/password/done/"
    assert "Your password has been changed." in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(new)
    # The session that changed it stays signed in.
    assert client.get("/home/").status_code == 200


def test_password_change_refuses_a_wrong_old_password(client, alice):
    client.force_login(alice)
    new = "a much longer passphrase 2026"
    response = client.post("/password/", {"old_password": "nope", "new_password1": new, "new_password2": new})
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


@override_settings(SESSION_ABSOLUTE_SECONDS=3600, SESSION_COOKIE_AGE=1800)
def test_the_absolute_session_lifetime_ends_a_dashboard_session(client, alice):
    with time_machine.travel(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False) as clock:
        client.post("/login/", {"username": "alice", "password": PASSWORD})
        for _ in range(3):
            clock.shift(dt.timedelta(minutes=20))
            assert client.get("/home/").status_code == 200
        clock.shift(dt.timedelta(minutes=5))
        assert client.get("/home/")["Location"] == "/login/?next=/home/"


def test_the_admin_is_for_superusers_only(client, alice, study_sites):
    """A staff-flagged coordinator, even one holding every model permission, is sent to the admin's sign-in; a
    superuser gets the admin."""
    from django.contrib.auth.models import Permission

    alice.is_staff = True
    alice.save(update_fields=["is_staff"])
    alice.user_permissions.set(Permission.objects.all())
    client.force_login(alice)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    response = client.get("/admin/participants/participant/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    client.force_login(root)
    body = page_text(client.get("/admin/"))
    assert "Site administration" in body and "Participants" in body
