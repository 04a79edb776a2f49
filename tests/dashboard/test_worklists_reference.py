"""Every home worklist of visits holds exactly the visits its definition names, in its order, for a seeded study at
two sites in different zones: each list is read whole and compared with the definition worked out in Python from the
participants' own rows (not the visits' copies of the site and study, not the SQL the lists use). A blinded rater
gets the same lists less the arm-only visits; a coordinator of this open-label study sees them all."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.db.models import F
from django.http import QueryDict

from assessments import windows
from assessments.models import Administration
from dashboard import worklists
from participants.models import AllocationSlot, Participant
from scheduling.blinded_view import protocol_faces
from scheduling.models import ProtocolDeviation, Visit
from scheduling.selectors import study_protocol
from tests.factories import UserFactory, build_study, staff
from tests.support.seed import seed_participants
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 10, 6, 30, tzinfo=dt.UTC)  # already the 10th in New York, still the 9th in Portland
NOT_DONE = {"planned", "scheduled"}
NO_LONGER_ASKED = {"withdrawn", "screen_failed", "completed", "lost_to_follow_up"}


def _key(visit, *fields):
    out = []
    for name in fields:
        value = visit.participant.participant_id if name == "pid" else getattr(visit, name)
        out.append((value is None, value if value is not None else 0))
    return (*out, visit.pk)


def _unlisted_for_a_rater(study) -> set[int]:
    """The visits a rater's date-ordered lists leave out, by the blinded view's definition read visit by visit: those
    the protocol's faces hide or show without dates, unless the participant's blind ended for raters (their visit of
    the declared timepoint completed or missed)."""
    faces = protocol_faces(study_protocol(study.protocol_code))
    arm_of = dict(AllocationSlot.objects.filter(participant__study=study).values_list("participant_id", "arm__code"))
    ended = set(
        Visit.objects.filter(participant__study=study, status__in=("completed", "missed")).values_list(
            "participant_id", "code"
        )
    )
    out = set()
    for v in Visit.objects.filter(participant__study=study, unscheduled=False):
        arm = arm_of.get(v.participant_id)
        if any(Role.RATER in roles and (v.participant_id, visits.get(arm)) in ended for roles, visits in faces.ends):
            continue
        face = faces.face(arm, v.code)
        if face is None or not face.dated:
            out.add(v.pk)
    return out


def _reference(study, *, hide_arm_only: bool) -> dict[str, list[tuple[str, str]]]:
    hidden = _unlisted_for_a_rater(study) if hide_arm_only else set()
    visits = [
        v
        for v in Visit.objects.select_related("participant__site").filter(participant__study=study)
        if v.pk not in hidden
    ]
    deviated = set(ProtocolDeviation.objects.values_list("visit_id", flat=True))
    answerable = {
        a.visit_id
        for a in Administration.objects.filter(respondent="self").select_related("participant")
        if windows.is_open(a, NOW)
        and a.participant.status not in NO_LONGER_ASKED
        and not a.participant.withdrawal_level
    }

    def today(v):
        return NOW.astimezone(zoneinfo.ZoneInfo(v.participant.site.time_zone)).date()

    def local_day(v, instant):
        return instant.astimezone(zoneinfo.ZoneInfo(v.participant.site.time_zone)).date()

    lists = {
        "today": sorted(
            (v for v in visits if v.scheduled_start and local_day(v, v.scheduled_start) == today(v)
             and v.status != "cancelled"),
            key=lambda v: _key(v, "scheduled_start", "pid"),
        ),
        "closing": sorted(
            (v for v in visits if v.status in NOT_DONE and v.window_end
             and today(v) <= v.window_end <= today(v) + dt.timedelta(days=worklists.CLOSING_WITHIN_DAYS)),
            key=lambda v: _key(v, "window_end", "pid"),
        ),
        "overdue": sorted(
            (v for v in visits if v.status in NOT_DONE and v.window_end and v.window_end < today(v)
             and v.pk not in deviated),
            key=lambda v: _key(v, "window_end", "pid"),
        ),
        "reschedule": sorted(
            (v for v in visits if v.needs_reschedule and v.status in NOT_DONE),
            key=lambda v: _key(v, "target_date", "pid"),
        ),
        "questionnaires-due": sorted(
            (v for v in visits if v.pk in answerable and v.status not in ("cancelled", "missed")
             and (v.target_date is None or v.target_date >= today(v))),
            key=lambda v: _key(v, "target_date", "window_end", "pid"),
        ),
        "questionnaires-overdue": sorted(
            (v for v in visits if v.pk in answerable and v.status not in ("cancelled", "missed")
             and v.target_date is not None and v.target_date < today(v)),
            key=lambda v: _key(v, "target_date", "window_end", "pid"),
        ),
        "dosing": sorted(
            (v for v in visits if v.kind == "dosing" and v.status == "scheduled" and v.scheduled_start
             and today(v) <= local_day(v, v.scheduled_start) <= today(v) + dt.timedelta(days=worklists.DOSING_AHEAD_DAYS)),
            key=lambda v: (v.scheduled_start, v.pk),
        ),
    }  # fmt: skip
    return {key: [(v.participant.participant_id, v.code) for v in rows] for key, rows in lists.items()}


def _listed(user) -> dict[str, list[tuple[str, str]]]:
    """Each visit list as the home page shows it, opened in turn; its count is its rows' number."""
    listed = {}
    for key in ("today", "closing", "overdue", "reschedule", "questionnaires-due", "questionnaires-overdue", "dosing"):
        (wl,) = [wl for wl in worklists.home_worklists(user, NOW, QueryDict(f"list={key}")) if wl.page is not None]
        assert wl.key == key
        listed[key] = [(v.participant.participant_id, v.code) for v in wl.page]
        assert wl.count == len(listed[key])
    return listed


@pytest.fixture
def seeded(monkeypatch):
    monkeypatch.setattr(worklists, "PAGE_SIZE", 100_000)  # each list whole, on one page
    with time_machine.travel(NOW, tick=False):
        study, sites = build_study(
            code="SAM",
            arms=("immediate", "delayed"),
            protocol_code="samati-v1",
            site_codes=("PDX", "NYC"),
            blinded=False,
        )
        sites["PDX"].time_zone = "America/Los_Angeles"
        sites["NYC"].time_zone = "America/New_York"
        for site in sites.values():
            site.save(update_fields=["time_zone"])
        admin = UserFactory(username="seed-admin", is_superuser=True)
        seed_participants(study, list(sites.values()), 240, now=NOW, by=admin)
        # A withdrawal after the seed: their questionnaires stay open in the table but are no longer chased.
        last = Participant.objects.filter(study=study, status="randomized").order_by("-id")[:5]
        Participant.objects.filter(pk__in=[p.pk for p in last]).update(status="withdrawn", withdrawal_level="full")
    return study, sites


def test_every_visit_list_is_its_definition(seeded):
    study, sites = seeded
    coordinator = staff("ref-coordinator", Role.COORDINATOR, *sites.values())
    listed, expected = _listed(coordinator), _reference(study, hide_arm_only=False)
    assert {k: len(v) for k, v in listed.items()} == {k: len(v) for k, v in expected.items()}
    assert listed == expected
    # The seed fills every list, so each comparison means something.
    assert all(expected.values()), {k: len(v) for k, v in expected.items()}


def test_a_blinded_rater_gets_the_lists_less_the_arm_only_visits(seeded):
    study, sites = seeded
    rater = staff("ref-rater", Role.RATER, *sites.values())
    listed, expected = _listed(rater), _reference(study, hide_arm_only=True)
    assert listed == expected
    unblinded = _reference(study, hide_arm_only=False)
    assert sum(map(len, unblinded.values())) > sum(map(len, expected.values()))  # the hiding is seen to act


def test_each_visit_carries_its_participants_site_and_study(seeded):
    study, _ = seeded
    mismatched = Visit.objects.exclude(site_id=F("participant__site_id")) | Visit.objects.exclude(
        study_id=F("participant__study_id")
    )
    assert Visit.objects.filter(participant__study=study).count() > 1000
    assert not mismatched.exists()
