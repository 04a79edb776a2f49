"""Every GET page of the page registry costs the same number of queries for a study of 10 participants and for one
of 1,000 (seeded in bulk by tests/support/seed.py): lists are paginated and read per page, never per row."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.db import connection, transaction
from django.http import QueryDict
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assessments.models import Administration, Response, SafetyAlert
from dashboard.worklists import home_worklists
from notifications.models import Notification
from participants.models import Participant
from safety import services as safety_services
from safety.models import AdverseEvent
from scheduling import services as scheduling_services
from scheduling.models import Visit
from tests.dashboard.pages import INVESTIGATORS_ONLY, get_pages
from tests.dashboard.world import NOW, SiteObjects, World, hidden_from, open_dosing_session, walk_study
from tests.factories import staff
from tests.support.seed import seed_participants
from trialsite.roles import Role

pytestmark = pytest.mark.django_db


def seeded_world(study, sites, users) -> World:
    """The objects the registry's pages name, taken from the seeded study: for each state an action needs, a
    participant not yet randomized (the forms read the same whatever the state)."""
    objects = {}
    for code, site in sites.items():
        at_site = study.participants.filter(site=site).order_by("id")
        first = at_site.filter(status=Participant.Status.RANDOMIZED).first()
        # Not randomized yet (at 10 participants a site may have no one screening, or no one enrolled).
        earlier = at_site.exclude(status=Participant.Status.RANDOMIZED).first()
        visits = Visit.objects.filter(participant=first).order_by("id")
        planned = visits.filter(status=Visit.Status.PLANNED)
        objects[code] = SiteObjects(
            site=site,
            coordinator=users[Role.COORDINATOR],
            participants={
                "first": first,
                "screening": earlier,
                "eligible": earlier,
                "consented": earlier,
                "enrolled": earlier,
                "leaving": earlier,
            },
            alert=SafetyAlert.objects.filter(participant__site=site).first(),
            notification=Notification.objects.filter(participant__site=site).first(),
            visits={
                "schedule": planned.first(),
                "complete": planned.first(),
                "miss": planned.last(),
                "cancel": planned.last(),
            },
            administration=Administration.objects.filter(participant=first).order_by("-id").first(),
            response=Response.objects.filter(participant__site=site).order_by("id").first(),
            medication=_medications(first, users),
            adverse_event=_adverse_event_at(first, users[Role.COORDINATOR]),
        )
    pdx = objects["PDX"]  # the site whose pages are counted
    _dosing_session_this_week(pdx, users)
    assert all(pdx.participants.values()) and all(pdx.visits.values()) and pdx.administration and pdx.response
    return World(study=study, sites=objects, users=users)


def _medications(participant: Participant, users):
    """Three medications of the participant whose pages are counted, one of a prohibited class stopped before the
    session booked below: the page flags each against the protocol with the same reads whatever their number.
    Returns the ongoing one."""
    with time_machine.travel(NOW, tick=False), transaction.atomic():
        values = {"participant": participant, "dose_amount": 1, "dose_unit": "mg", "by": users[Role.COORDINATOR]}
        first = safety_services.medication_record(
            name="lorazepam", medication_class="benzodiazepine", start_date=dt.date(2026, 1, 1), **values
        )
        stopped = safety_services.medication_record(
            name="sertraline", medication_class="ssri", start_date=dt.date(2025, 12, 1), **values
        )
        safety_services.medication_stop(medication=stopped, stop_date=dt.date(2026, 2, 1), by=users[Role.COORDINATOR])
        safety_services.medication_record(
            name="ibuprofen", medication_class="other", start_date=dt.date(2026, 2, 1), **values
        )
    return first


def _adverse_event_at(participant: Participant, by) -> AdverseEvent:
    """The site's first adverse event, or one the coordinator records now (a seed may have none)."""
    found = AdverseEvent.objects.filter(participant__site_id=participant.site_id).order_by("id").first()
    if found is not None:
        return found
    with transaction.atomic():
        return safety_services.adverse_event_record(
            participant=participant,
            verbatim_term="headache",
            onset_at=timezone.now() - dt.timedelta(hours=2),
            severity_grade=1,
            relatedness_drug="possible",
            relatedness_therapy="not_related",
            expectedness="expected",
            action_taken="dose_not_changed",
            outcome="recovered",
            by=by,
        )


def _dosing_session_this_week(objects: SiteObjects, users) -> None:
    """A dosing session booked (through the service) in the week the calendar shows, with its room and therapists,
    so that the calendar's lists have rows at both sizes (an empty list skips its related reads)."""
    site = objects.site
    zone = zoneinfo.ZoneInfo(site.time_zone)
    therapists = [staff(f"q-therapist-{n}", Role.THERAPIST, site).username for n in (1, 2)]
    visit = (
        Visit.objects.filter(
            participant__site=site, kind="dosing", status=Visit.Status.PLANNED, participant__status="randomized"
        )
        .order_by("id")
        .first()
    )
    assert visit is not None
    with time_machine.travel(NOW, tick=False), transaction.atomic():
        room = scheduling_services.room_create(site=site, name="Q room", by=None)
        scheduling_services.visit_schedule(
            visit=visit, start=dt.datetime(2026, 3, 6, 9, 0, tzinfo=zone), room=room, staff=therapists,
            by=users[Role.ADMIN],
        )  # fmt: skip
        visit.refresh_from_db()
        objects.visits["booked"] = visit
        objects.dosing_session = open_dosing_session(visit, by=users[Role.ADMIN], kit="KIT-Q-1")
        objects.vital_sign = objects.dosing_session.vital_signs.get()
    objects.visits["dosing"] = (
        Visit.objects.filter(participant__site=site, kind="dosing", status=Visit.Status.PLANNED)
        .exclude(pk=visit.pk)
        .order_by("id")
        .first()
    )


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
                # A page for investigators only answers these roles with its refusal, at a cost of its own.
                allowed = (200, 302, 403) if name in INVESTIGATORS_ONLY else (200, 302)
                if hidden_from(world.users[role], url):
                    allowed = (404,)  # a visit the role's blinded schedule does not show
                assert response.status_code in allowed, (role, name, url, response.status_code)
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
    lists = {w.key: w.count for w in home_worklists(users[Role.ADMIN], NOW, QueryDict())}
    assert all(lists.values()), lists
    # The blinded coordinator's too, but for the lists of visits the waitlist design's blinded schedule never lists
    # (dosing sessions; the visits flagged for rescheduling, all of them an arm's own): those stay empty for them.
    blinded = {w.key: w.count for w in home_worklists(users[Role.COORDINATOR], NOW, QueryDict())}
    assert {key for key, count in blinded.items() if not count} == {"dosing", "reschedule"}, blinded
    seed_participants(study, list(sites.values()), 990, now=NOW, by=users[Role.ADMIN])
    assert study.participants.count() == 1000
    large = counts(world)
    assert set(small) == set(large) and len(small) == 2 * len(get_pages())
    assert small == large, {k: (small[k], large[k]) for k in small if small[k] != large[k]}
