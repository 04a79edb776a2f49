"""Blinding, walked: in a double-blind study whose arm codes, labels and arm-only visit are unique strings, every GET
URL of the page registry (tests/dashboard/pages.py), over every participant and the filters and later pages of the
lists, is fetched as each role that may not see the allocation; no body holds any of those strings (an action page a
role may not use answers with its refusal, a 403 page, scanned as well). The same walk as an unblinded role finds
them, so the scan can fail."""

from __future__ import annotations

import pytest
import time_machine
from django.test import Client

from participants import access
from tests.dashboard.pages import get_pages, get_urls
from tests.dashboard.world import NOW, World, hidden_from, hits, without_arm_options, without_own_address
from trialsite.roles import ALWAYS_BLINDED, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def short_pages(monkeypatch):
    """Lists of a few rows, so that the world's participants fill several pages and the later pages are walked."""
    monkeypatch.setattr("dashboard.matrix.PAGE_SIZE", 3)
    monkeypatch.setattr("dashboard.worklists.PAGE_SIZE", 1)


def blinded(world: World, role: str) -> bool:
    user = world.users[role]
    return not any(access.can_see_allocation(user, site_id=s.site.pk, study=world.study) for s in world.sites.values())


def walk(world: World, role: str) -> dict[str, tuple[int, list[str]]]:
    """URL -> (status, arm strings found in the body), for every GET URL of the registry over both sites. A rater
    gets a 404 for every page of safety data (the world's blinded study hides it from raters), and only then."""
    client = Client()
    found = {}
    pages = get_pages()
    with time_machine.travel(NOW, tick=False):
        client.force_login(world.users[role])
        for name, url in get_urls(world):
            response = client.get(url)
            hidden = pages[name].safety and role == Role.RATER and world.study.hides_safety_from_raters
            allowed = (404,) if hidden else (200, 302, 400, 403)
            if hidden_from(world.users[role], url):
                allowed = (404,)  # a visit the role's blinded schedule does not show
            assert response.status_code in allowed, (role, name, url, response.status_code)
            body = without_arm_options(without_own_address(response.content.decode(), url))
            found[url] = (response.status_code, hits(body))
    return found


def test_the_walk_covers_every_get_page_and_every_participant(world):
    urls = dict((url, name) for name, url in get_urls(world))
    assert set(urls.values()) == set(get_pages())
    for participant in world.participants():
        assert any(participant.participant_id in url for url in urls), participant.participant_id
    assert sum(1 for url in urls if "page=" in url) >= 8 and sum(1 for url in urls if "visit=" in url) >= 15


def test_blinded_roles_see_no_arm_on_any_page(world, short_pages):
    roles = [role.value for role in Role if blinded(world, role.value)]
    # The study is double-blind and not unblinded: every role but the always-unblinded ones is blind to the arm.
    assert set(ALWAYS_BLINDED) <= set(roles) and Role.COORDINATOR in roles and Role.INVESTIGATOR in roles
    leaks = {}
    for role in roles:
        result = walk(world, role)
        assert sum(1 for status, _ in result.values() if status == 200) > len(world.participants())
        leaks.update({(role, url): found for url, (_status, found) in result.items() if found})
    assert not leaks, "arm strings shown to blinded roles:\n" + "\n".join(f"{k}: {v}" for k, v in leaks.items())


def test_the_same_walk_as_an_unblinded_role_finds_the_arms(world, short_pages):
    for role in (Role.ADMIN, Role.UNBLINDED_STATISTICIAN):
        assert not blinded(world, role)
        result = walk(world, role)
        found = {needle for _status, hit in result.values() for needle in hit}
        assert sum(len(hit) for _status, hit in result.values()) > 0
        # Each arm's label shows on its participants' pages, and the arm-only visit on the matrix.
        assert {"Quorvane", "Velmorix"} <= found and "ZQ_WAITX" in found, (role, found)
