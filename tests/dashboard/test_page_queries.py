"""Every GET page of the page registry costs the same number of queries for a study of 10 participants and for one
of 1,000 (seeded in bulk by tests/support/seed.py): lists are paginated and read per page, never per row."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.http import QueryDict
from django.test import Client
from django.test.utils import CaptureQueriesContext

from assessments.models import SafetyAlert
from dashboard.worklists import home_worklists
from notifications.models import Notification
from tests.dashboard.pages import get_pages
from tests.dashboard.world import NOW, SiteObjects, World, walk_study
from tests.factories import staff
from tests.support.seed import seed_participants
from trialsite.roles import Role

pytestmark = pytest.mark.django_db


def seeded_world(study, sites, users) -> World:
    objects = {}
    for code, site in sites.items():
        first = study.participants.filter(site=site, status="randomized").order_by("id").first()
        objects[code] = SiteObjects(
            site=site,
            coordinator=users[Role.COORDINATOR],
            participants={"first": first},
            alert=SafetyAlert.objects.filter(participant__site=site).first(),
            notification=Notification.objects.filter(participant__site=site).first(),
        )
    return World(study=study, sites=objects, users=users)


def counts(world: World) -> dict[tuple[str, str], int]:
    """(role, URL) -> queries, for the first URL of every GET page, as a blinded and an unblinded role."""
    out = {}
    site = world.sites["PDX"]
    with time_machine.travel(NOW, tick=False):
        for role in (Role.COORDINATOR, Role.ADMIN):
            client = Client()
            client.force_login(world.users[role])
            for name, page in get_pages().items():
                url = page.url(world, site)
                client.get(url)  # warm: the session, the translations, the protocol cache
                with CaptureQueriesContext(connection) as captured:
                    response = client.get(url)
                assert response.status_code in (200, 302), (role, name, url, response.status_code)
                out[(role.value, url)] = len(captured)
    return out


def test_every_get_page_costs_the_same_for_10_and_1000_participants():
    with time_machine.travel(NOW - dt.timedelta(days=300), tick=False):
        study, sites = walk_study()
        users = {role: staff(f"q-{role.value}", role, *sites.values()) for role in (Role.COORDINATOR, Role.ADMIN)}
    seed_participants(study, list(sites.values()), 10, now=NOW, by=users[Role.ADMIN])
    world = seeded_world(study, sites, users)
    small = counts(world)
    # Every list of the home page has rows already: a list that is empty skips its page read.
    lists = {w.key: w.count for w in home_worklists(users[Role.COORDINATOR], NOW, QueryDict())}
    assert all(lists.values()), lists
    seed_participants(study, list(sites.values()), 990, now=NOW, by=users[Role.ADMIN])
    assert study.participants.count() == 1000
    large = counts(world)
    assert set(small) == set(large) and len(small) == 2 * len(get_pages())
    assert small == large, {k: (small[k], large[k]) for k in small if small[k] != large[k]}
