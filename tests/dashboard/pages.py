"""Every dashboard page, by URL name, and how to reach it in the test world (tests/dashboard/world.py).

The walks (blinding, site scoping, CSRF, accessibility, query counts) take their URLs from here, and
test_pages_registry.py fails when a URL name of dashboard.urls has no entry. Registering a page is one line in PAGES:

    "url-name": Page(lambda w, s: [reverse("url-name", args=[s.alert.pk])], POST, scoped=True, data=lambda w, s: {..}),

- ``urls(world, site)``: the page's URLs for one site's objects (``site`` is a world.SiteObjects); the first is the
  page's plain URL (used where one URL per page is enough, and as the POST target). Query-string variants that matter
  (filters, later pages) follow it. A page that names no object ignores ``site``.
- ``methods``: the HTTP methods the page takes (GET, POST or both).
- ``scoped``: the URL names a site's object (a participant, an alert, ...): another site's staff get a 404.
- ``data(world, site)``: a POST body the page accepts from a user allowed to send it (the walks' investigator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, reverse

from participants.models import Participant
from tests.dashboard.world import PASSWORD, SiteObjects, World

GET = ("GET",)
POST = ("POST",)
GET_POST = ("GET", "POST")

# URL names of dashboard.urls that are not staff pages of the registry, and why.
NOT_IN_REGISTRY = {
    "login": "the sign-in page is for anonymous visitors; test_sign_in.py and test_csrf.py cover it, and the browser "
    "tests sign in through it",
    "logout": "ends the session (POST only); test_sign_in.py and the browser tests cover it",
    "set_language": "Django's own i18n view for visitors before sign-in (a cookie, no data); staff use "
    "dashboard-language",
}


@dataclass(frozen=True)
class Page:
    urls: Callable[[World, SiteObjects], list[str]]
    methods: tuple[str, ...] = GET
    scoped: bool = False
    data: Callable[[World, SiteObjects], dict[str, Any]] = field(default=lambda w, s: {})

    def url(self, world: World, site: SiteObjects) -> str:
        return self.urls(world, site)[0]


def _home(w: World, s: SiteObjects) -> list[str]:
    base = reverse("dashboard-home")
    keys = ("alerts", "today", "closing", "overdue", "dosing", "failed")
    return [base, *(f"{base}?{key}-page=2" for key in keys)]


def _matrix(w: World, s: SiteObjects) -> list[str]:
    """The matrix with every filter the page offers: each site, status and visit (the arm-only visit included: a
    blinded viewer must be refused it without its name), id searches, and the later pages."""
    from scheduling import selectors as scheduling_selectors

    base = f"{reverse('dashboard-matrix')}?study={w.study.code}"
    protocol = scheduling_selectors.study_protocol(w.study.protocol_code)
    assert protocol is not None
    visits = sorted({v.code for arm in protocol.arms.values() for v in arm.visits})
    pages = (2, 3, 99)  # 99: past the last page, which the paginator answers with the last page
    participant = next(iter(s.participants.values()))
    return [
        base,
        *(f"{base}&site={code}" for code in w.sites),
        *(f"{base}&status={status}" for status in Participant.Status.values),
        *(f"{base}&visit={code}" for code in visits),
        f"{base}&q={participant.participant_id}",
        f"{base}&q=NOPE",
        *(f"{base}&page={n}" for n in pages),
        f"{base}&status=randomized&page=2",
    ]


PAGES: dict[str, Page] = {
    "root": Page(lambda w, s: [reverse("root")]),
    "password_change": Page(
        lambda w, s: [reverse("password_change")],
        GET_POST,
        data=lambda w, s: {
            "old_password": PASSWORD,
            "new_password1": "a much longer new secret 42",
            "new_password2": "a much longer new secret 42",
        },
    ),  # fmt: skip
    "password_change_done": Page(lambda w, s: [reverse("password_change_done")]),
    "dashboard-home": Page(_home),
    "dashboard-matrix": Page(_matrix, GET_POST, data=lambda w, s: {"kind": "name", "text": "Rand"}),
    "dashboard-language": Page(
        lambda w, s: [reverse("dashboard-language")], GET_POST, data=lambda w, s: {"language": "es"}
    ),  # fmt: skip
    "dashboard-alert-acknowledge": Page(
        lambda w, s: [reverse("dashboard-alert-acknowledge", args=[s.alert.pk])],
        POST,
        scoped=True,
        data=lambda w, s: {"note": "Called; safety plan in place."},
    ),  # fmt: skip
    "dashboard-notification-retry": Page(
        lambda w, s: [reverse("dashboard-notification-retry", args=[s.notification.pk])],
        POST,
        scoped=True,
        data=lambda w, s: {"reason": "address corrected"},
    ),  # fmt: skip
    "dashboard-participant": Page(
        lambda w, s: [reverse("dashboard-participant", args=[p.participant_id]) for p in s.all_participants],
        scoped=True,
    ),  # fmt: skip
}


def dashboard_url_names() -> set[str]:
    """Every URL name that dashboard.urls defines, includes followed."""
    names: set[str] = set()

    def walk(patterns: list[Any]) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern) and pattern.name:
                names.add(pattern.name)

    walk(get_resolver("dashboard.urls").url_patterns)
    return names


def get_pages() -> dict[str, Page]:
    return {name: page for name, page in PAGES.items() if "GET" in page.methods}


def post_pages() -> dict[str, Page]:
    return {name: page for name, page in PAGES.items() if "POST" in page.methods}


def get_urls(world: World, sites: list[str] | None = None) -> list[tuple[str, str]]:
    """(URL name, URL) for every GET URL of the registry over the given sites' objects (default: all), deduplicated."""
    seen: dict[str, str] = {}
    for name, page in get_pages().items():
        for code in sites or list(world.sites):
            for url in page.urls(world, world.sites[code]):
                seen.setdefault(url, name)
    return [(name, url) for url, name in seen.items()]
