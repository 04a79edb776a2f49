"""Site scoping, walked: staff of PDX only (a coordinator, an investigator) get a 404 on every URL of the page
registry that names an NYC object, by every method the page takes, and the database does not change (every table's
checksum). No page built from NYC's objects (an id search, a site filter) shows an NYC participant either."""

from __future__ import annotations

import pytest
import time_machine
from django.test import Client

from tests.dashboard.pages import INVESTIGATORS_ONLY, PAGES, get_pages
from tests.dashboard.world import NOW, hidden_from, without_own_address
from tests.factories import staff
from tests.support import dbstate
from trialsite.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def pdx_staff(world):
    pdx = world.sites["PDX"].site
    return {"coordinator": world.sites["PDX"].coordinator, "investigator": staff("ines", Role.INVESTIGATOR, pdx)}


@pytest.fixture(autouse=True)
def _sessions_in_the_cache(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"  # the session row is HTTP state, not data


def request(client: Client, method: str, url: str, data: dict):
    return client.get(url) if method == "GET" else client.post(url, data)


def test_every_url_naming_another_sites_object_is_not_found_and_changes_nothing(world, pdx_staff):
    pdx, nyc = world.sites["PDX"], world.sites["NYC"]
    nyc_ids = [p.participant_id for p in nyc.all_participants]
    scoped = {name: page for name, page in PAGES.items() if page.scoped}
    assert {"dashboard-participant", "dashboard-alert-acknowledge", "dashboard-notification-retry"} <= set(scoped)
    names = dbstate.tables()
    for who, user in pdx_staff.items():
        client = Client()
        with time_machine.travel(NOW, tick=False):
            client.force_login(user)
            before = dbstate.snapshot(names)
            tried = 0
            for page in scoped.values():
                for url in page.urls(world, nyc):
                    for method in page.methods:
                        for data in page.bodies(world, nyc) if method == "POST" else [{}]:
                            response = request(client, method, url, data)
                            assert response.status_code == 404, (who, method, url, response.status_code)
                            body = response.content.decode()
                            assert not [pid for pid in nyc_ids if pid in body], (who, method, url)
                            tried += 1
            assert dbstate.differences(before, dbstate.snapshot(names)) == {}, who
            # The same pages for their own site's objects are there (the 404s above are the site, not the page).
            for name, page in scoped.items():
                if "GET" in page.methods:
                    # A page for one role only answers the others with its refusal (a 403), not with a 404.
                    expected = 403 if name in INVESTIGATORS_ONLY and who != "investigator" else 200
                    for url in page.urls(world, pdx):
                        # A visit the role's blinded schedule does not show is not found at its own site either.
                        own = 404 if hidden_from(user, url) else expected
                        assert client.get(url).status_code == own, (who, url)
        assert tried >= len(nyc.all_participants) + 2


def test_no_page_built_from_another_sites_objects_shows_them(world, pdx_staff, monkeypatch):
    """Unscoped pages take another site's objects in their query (the matrix's id search and site filter): they
    answer without them."""
    monkeypatch.setattr("dashboard.matrix.PAGE_SIZE", 3)
    nyc_ids = [p.participant_id for p in world.sites["NYC"].all_participants]
    client = Client()
    with time_machine.travel(NOW, tick=False):
        client.force_login(pdx_staff["coordinator"])
        walked = 0
        for page in get_pages().values():
            if page.scoped:
                continue
            for url in page.urls(world, world.sites["NYC"]):
                response = client.get(url)
                assert response.status_code in (200, 302, 400), (url, response.status_code)
                body = without_own_address(response.content.decode(), url)  # an id searched for is echoed
                assert not [pid for pid in nyc_ids if pid in body], url
                walked += 1
        # The control: PDX's own participants are listed on the same pages.
        body = client.get(PAGES["dashboard-matrix"].url(world, world.sites["PDX"])).content.decode()
        assert world.sites["PDX"].participants["screening"].participant_id in body
    assert walked > 20
