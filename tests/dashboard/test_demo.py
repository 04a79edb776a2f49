"""Every demo staff account signs in to the dashboard with the password the demo prints, and has an e-mail address."""

from __future__ import annotations

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
