from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import override_settings

pytestmark = pytest.mark.django_db


@override_settings(SESSION_ABSOLUTE_SECONDS=3600, SESSION_COOKIE_AGE=1800)
def test_staff_session_ends_after_its_absolute_lifetime_even_when_active(client, alice, make_participant):
    make_participant("screening")
    start = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as clock:
        assert (
            client.post("/login/", {"username": "alice", "password": "correct horse battery staple"}).status_code == 302
        )
        assert client.get("/api/v1/participants/").json()["count"] == 1
        for _ in range(3):  # active every 20 minutes: the sliding timeout never fires
            clock.shift(dt.timedelta(minutes=20))
            assert client.get("/api/v1/participants/").status_code == 200
        clock.shift(dt.timedelta(minutes=5))  # 65 minutes after log-in
        response = client.get("/api/v1/participants/")
        assert response.status_code == 401
        assert "credentials were not provided" in response.json()["detail"]
