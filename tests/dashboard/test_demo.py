"""Every demo staff account signs in to the dashboard with the password the demo prints, and has an e-mail address."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard.demo import seed_demo
from participants.demo import DEMO_USERS

pytestmark = pytest.mark.django_db


def test_every_demo_login_signs_in_and_lands_on_home():
    logins = seed_demo()
    assert {username for username, _, _ in logins} == {username for username, _, _ in DEMO_USERS}
    for username, password, _ in logins:
        user = get_user_model().objects.get(username=username)
        assert user.email == f"{username}@demo.trialsite.invalid"
        client = Client()
        response = client.post("/login/", {"username": username, "password": password})
        assert (response.status_code, response.get("Location")) == (302, "/home/"), username
        body = client.get("/home/").content.decode()
        assert "<h1>Today</h1>" in body and '<span class="site" title="Portland clinic">PDX</span>' in body


def test_the_demo_is_refused_on_a_deployment(settings):
    """With DEBUG off (a deployment), seed_demo refuses: its superuser's password is in the source."""
    from django.core.management import CommandError, call_command

    settings.DEBUG = False
    with pytest.raises(CommandError, match="runs only with DEBUG on"):
        call_command("seed_demo")
    assert not get_user_model().objects.filter(username="admin").exists()
    settings.DEBUG = True
    call_command("seed_demo", stdout=io.StringIO())
    assert get_user_model().objects.get(username="admin").is_superuser
