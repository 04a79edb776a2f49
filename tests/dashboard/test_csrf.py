"""Staff forms carry a CSRF token and are checked against the Origin; the site's referrer policy is same-origin (so
browsers send a real Origin with a form post) except on the participant token URL, which sends no-referrer."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from audit.models import AuditEvent
from participants.models import StaffProfile

pytestmark = pytest.mark.django_db


def token_of(client: Client, path: str) -> str:
    body = client.get(path).content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert match, "the page has no CSRF token"
    return match.group(1)


@pytest.fixture
def csrf_client(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


def test_a_same_origin_post_with_its_token_succeeds(csrf_client, alice):
    token = token_of(csrf_client, "/settings/language/")
    response = csrf_client.post(
        "/settings/language/",
        {"csrfmiddlewaretoken": token, "language": "es"},
        headers={"Origin": "http://testserver"},
    )
    assert response.status_code == 302
    assert StaffProfile.objects.get(user=alice).language == "es"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
    ids=["another-site", "null-origin"],
)
def test_a_cross_site_post_is_refused(csrf_client, alice, headers):
    token = token_of(csrf_client, "/settings/language/")
    response = csrf_client.post(
        "/settings/language/", {"csrfmiddlewaretoken": token, "language": "es"}, headers=headers
    )
    assert response.status_code == 403
    assert "CSRF verification failed" in response.content.decode()
    assert not StaffProfile.objects.filter(user=alice).exists()


def test_a_post_without_the_token_is_refused(csrf_client, alice):
    token_of(csrf_client, "/settings/language/")  # the cookie is set; the form field is missing
    response = csrf_client.post("/settings/language/", {"language": "es"}, headers={"Origin": "http://testserver"})
    assert response.status_code == 403
    assert not StaffProfile.objects.filter(user=alice).exists()


def test_a_forged_sign_in_is_refused_and_records_nothing():
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/login/", {"username": "alice", "password": "x"}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action__in=["login", "login_failed"]).exists()


def test_staff_pages_send_same_origin_and_the_token_url_no_referrer(client, alice):
    assert client.get("/login/")["Referrer-Policy"] == "same-origin"
    client.force_login(alice)
    assert client.get("/home/")["Referrer-Policy"] == "same-origin"
    assert client.get("/l/not-a-real-token-at-all/")["Referrer-Policy"] == "no-referrer"
