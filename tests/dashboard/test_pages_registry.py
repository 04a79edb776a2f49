"""The page registry (tests/dashboard/pages.py) names every URL of dashboard.urls, so the walks over it (blinding,
site scoping, CSRF, accessibility, query counts) cover every dashboard page, and a new page fails here until it is
registered."""

from __future__ import annotations

import pytest
from django.urls import resolve

from tests.dashboard.pages import NOT_IN_REGISTRY, PAGES, dashboard_url_names

pytestmark = pytest.mark.django_db


def test_every_dashboard_url_name_has_an_entry_or_a_reason():
    names = dashboard_url_names()
    missing = sorted(names - set(PAGES) - set(NOT_IN_REGISTRY))
    assert not missing, f"register these dashboard URL names in tests/dashboard/pages.py PAGES: {missing}"
    stale = sorted((set(PAGES) | set(NOT_IN_REGISTRY)) - names)
    assert not stale, f"entries for URL names dashboard.urls no longer has: {stale}"
    assert not set(PAGES) & set(NOT_IN_REGISTRY)
    assert all(reason.strip() for reason in NOT_IN_REGISTRY.values())


def test_every_entry_builds_urls_that_resolve_to_its_name(world):
    for name, page in PAGES.items():
        assert page.methods and set(page.methods) <= {"GET", "POST"}, name
        for code, site in world.sites.items():
            urls = page.urls(world, site)
            assert urls, (name, code)
            for url in urls:
                assert resolve(url.split("?")[0]).url_name == name, (name, url)
        if page.scoped:
            # A scoped page's URLs differ by site: each names that site's object.
            assert set(page.urls(world, world.sites["PDX"])).isdisjoint(page.urls(world, world.sites["NYC"])), name
