"""CSRF, walked: every POST URL of the page registry refuses a forged cross-site post with a 403 and writes nothing,
whether the forgery lacks the token (a form on another site) or carries the victim's token from another Origin. The
same post with the token from the page's own origin goes through and writes, so the refusals are CSRF's."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.test import Client

from tests.dashboard.pages import post_pages
from tests.dashboard.world import NOW, hidden_from
from tests.support import dbstate

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _sessions_in_the_cache(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"  # the session row is HTTP state, not data


def token_of(client: Client) -> str:
    body = client.get("/settings/language/").content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert match, "the page has no CSRF token"
    return match.group(1)


def test_every_post_url_refuses_a_forged_cross_site_post_and_writes_nothing(world):
    site = world.sites["PDX"]
    names = dbstate.tables()
    pages = post_pages()
    assert {"dashboard-alert-acknowledge", "dashboard-notification-retry", "dashboard-language"} <= set(pages)
    with time_machine.travel(NOW, tick=False):
        for name, page in pages.items():
            for data in page.bodies(world, site):
                url = page.url(world, site)
                user = world.users[page.user]  # the investigator (every action at both sites), or the administrator
                if hidden_from(user, url, data):
                    # A visit the investigator's blinded schedule does not show (a dosing session of a waitlist
                    # design): an unblinded role acts on it.
                    user = world.users["admin"]
                client = Client(enforce_csrf_checks=True)
                user.refresh_from_db()  # a password changed by an earlier control post
                client.force_login(user)
                token = token_of(client)
                forgeries = {
                    "no token": (data, {}),
                    "no token, foreign origin": (data, {"Origin": "https://evil.example"}),
                    "token, foreign origin": (
                        {**data, "csrfmiddlewaretoken": token},
                        {"Origin": "https://evil.example"},
                    ),
                    "token, null origin": ({**data, "csrfmiddlewaretoken": token}, {"Origin": "null"}),
                }
                before = dbstate.snapshot(names)
                for what, (body, headers) in forgeries.items():
                    response = client.post(url, body, headers=headers)
                    assert response.status_code == 403, (name, what, response.status_code)
                    assert "CSRF verification failed" in response.content.decode(), (name, what)
                assert dbstate.differences(before, dbstate.snapshot(names)) == {}, name
                # The control: the page's own form, from its own origin, goes through and writes.
                response = client.post(
                    url, {**data, "csrfmiddlewaretoken": token}, headers={"Origin": "http://testserver"}
                )
                assert response.status_code in (200, 302), (name, data, response.status_code)
                assert dbstate.differences(before, dbstate.snapshot(names)), (name, data)
