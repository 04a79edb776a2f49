"""The TOTP second factor: a staff member enrols an authenticator app from their account, and with
STAFF_REQUIRE_2FA (production's default) no staff page and no API call through the session works until a code from
it is verified. Wrong codes are refused and audited."""

from __future__ import annotations

import datetime as dt
from base64 import b32decode

import pytest
import time_machine
from django.core.management import call_command
from django.test import override_settings
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from tests.dashboard.conftest import PASSWORD, page_text

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 2, 9, 0, 5, tzinfo=dt.UTC)


def code_for(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def wrong_code(device: TOTPDevice) -> str:
    return f"{(int(code_for(device)) + 1) % 1_000_000:06d}"


def enrol(client, user) -> TOTPDevice:
    """The enrolment as a signed-in user does it: open the setup page, confirm with the app's current code."""
    body = page_text(client.get("/login/two-factor/setup/"))
    assert "<h1>Set up your authenticator app</h1>" in body and "<svg" in body
    assert not TOTPDevice.objects.filter(user=user, confirmed=False).exists()  # the page wrote nothing
    # The key as the page shows it for typing in (base32), as an app would read it.
    typed = body.split('id="totp-key" class="link-text" type="text" value="', 1)[1].split('"', 1)[0]
    key = b32decode(typed.replace(" ", "")).hex()
    app = TOTPDevice(key=key)
    response = client.post("/login/two-factor/setup/", {"code": wrong_code(app)})
    assert response.status_code == 200 and "That code is not right" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=user).exists()
    response = client.post("/login/two-factor/setup/", {"code": code_for(app)})
    assert response.status_code == 302
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed and device.key == key
    return device


def test_the_default_follows_debug():
    from trialsite import settings as project_settings

    assert project_settings.STAFF_REQUIRE_2FA is (not project_settings.DEBUG)


@override_settings(STAFF_REQUIRE_2FA=True)
def test_a_staff_login_in_production_without_a_second_factor_is_refused(client, alice, make_participant):
    make_participant("screening")
    with time_machine.travel(START, tick=False) as clock:
        # The password alone signs in to nothing: pages send to the second-factor step, the API answers 401.
        response = client.post("/login/", {"username": "alice", "password": PASSWORD})
        assert response.status_code == 302 and response["Location"] == "/home/"
        response = client.get("/home/")
        assert response.status_code == 302 and response["Location"] == "/login/two-factor/?next=%2Fhome%2F"
        assert client.get("/participants/MAP-PDX-001/")["Location"].startswith("/login/two-factor/")
        assert client.get("/admin/")["Location"].startswith("/login/two-factor/")
        response = client.get("/api/v1/participants/")
        assert response.status_code == 401 and "credentials were not provided" in response.json()["detail"]
        htmx = client.post("/alerts/1/acknowledge/", {"note": "x"}, headers={"HX-Request": "true"})
        assert htmx.status_code == 204 and htmx["HX-Redirect"] == "/login/two-factor/"
        # With no device yet the code step sends to the enrolment, which confirms with a code from the app.
        response = client.get("/login/two-factor/?next=/home/")
        assert response["Location"] == "/login/two-factor/setup/?next=%2Fhome%2F"
        device = enrol(client, alice)
        assert AuditEvent.objects.filter(entity_type="second_factor", action="create", actor=alice).count() == 1
        # Enrolling verified this session.
        assert "<h1>Today</h1>" in page_text(client.get("/home/"))
        assert client.get("/api/v1/participants/").json()["count"] == 1

        # The next sign-in asks for a code; a wrong one is refused and audited, the right one lets in.
        client.post("/logout/")
        clock.shift(dt.timedelta(minutes=5))
        client.post("/login/", {"username": "alice", "password": PASSWORD})
        assert client.get("/api/v1/participants/").status_code == 401
        response = client.post("/login/two-factor/", {"code": wrong_code(device), "next": "/home/"})
        assert response.status_code == 200
        assert "That code is not right" in response.content.decode()
        failed = AuditEvent.objects.get(entity_type="second_factor", action="login_failed", new_value="sign-in")
        assert (failed.actor_id, failed.entity_id, failed.new_value) == (alice.pk, str(alice.pk), "sign-in")
        assert client.get("/home/").status_code == 302
        assert client.get("/api/v1/participants/").status_code == 401

        clock.shift(dt.timedelta(seconds=30))  # the device slows down after a wrong code
        response = client.post("/login/two-factor/", {"code": code_for(device), "next": "/home/"})
        assert response.status_code == 302 and response["Location"] == "/home/"
        assert "<h1>Today</h1>" in page_text(client.get("/home/"))
        body = client.get("/api/v1/participants/").json()
        assert [p["participant_id"] for p in body["results"]] == ["MAP-PDX-001"]
        # A code works once: replaying it in another session is refused.
        other = client.__class__()
        other.post("/login/", {"username": "alice", "password": PASSWORD})
        assert other.post("/login/two-factor/", {"code": code_for(device)}).status_code == 200
        assert (
            AuditEvent.objects.filter(entity_type="second_factor", action="login_failed", new_value="sign-in").count()
            == 2
        )
        assert (
            AuditEvent.objects.filter(entity_type="second_factor", action="login_failed", new_value="enrolment").count()
            == 1
        )


@override_settings(STAFF_REQUIRE_2FA=True)
def test_the_enrolment_is_closed_to_a_password_only_session_once_a_device_exists(client, alice):
    with time_machine.travel(START, tick=False):
        client.post("/login/", {"username": "alice", "password": PASSWORD})
        device = enrol(client, alice)
        client.post("/logout/")
        client.post("/login/", {"username": "alice", "password": PASSWORD})
        response = client.get("/login/two-factor/setup/")
        assert response.status_code == 302 and response["Location"].startswith("/login/two-factor/?next=")
        assert list(TOTPDevice.objects.filter(user=alice)) == [device]


def test_in_the_demo_a_second_factor_is_optional_but_asked_for_once_enrolled(client, alice, settings):
    assert settings.STAFF_REQUIRE_2FA is False
    with time_machine.travel(START, tick=False) as clock:
        client.post("/login/", {"username": "alice", "password": PASSWORD})
        body = page_text(client.get("/account/"))
        assert "No authenticator app is set up." in body
        device = enrol(client, alice)
        assert "An authenticator app is set up" in page_text(client.get("/account/"))
        client.post("/logout/")
        client.post("/login/", {"username": "alice", "password": PASSWORD})
        assert client.get("/home/")["Location"] == "/login/two-factor/?next=%2Fhome%2F"
        clock.shift(dt.timedelta(seconds=30))  # the enrolment's code is spent
        assert client.post("/login/two-factor/", {"code": code_for(device)})["Location"] == "/home/"


def test_reset_second_factor_removes_the_device_and_is_audited(alice, capsys):
    with time_machine.travel(START, tick=False):
        TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)
        call_command("reset_second_factor", "alice", "--reason", "lost phone")
    assert "Removed 1 device(s) of alice." in capsys.readouterr().out
    assert not TOTPDevice.objects.filter(user=alice).exists()
    event = AuditEvent.objects.get(entity_type="second_factor", action="delete")
    assert (event.reason, event.actor_username) == ("lost phone", "manage.py reset_second_factor")


def test_totp_keys_are_not_in_the_admin(client, study_sites):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    assert client.get("/admin/otp_totp/totpdevice/").status_code == 404
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404
