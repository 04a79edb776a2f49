"""The adverse-event summary: counts per AESI category, pooled for everyone and per arm only for roles that may see
the allocation, computed here by hand from a small set of events."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from participants.models import AllocationSlot, Study
from safety.models import AdverseEvent
from tests.factories import staff, unblind_by_api
from tests.safety.conftest import NOW, mild_values, record
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

URL = "/api/v1/adverse-events/summary/?study=MAP"
ZERO = {"participants": 0, "events": 0, "events_grade_3_or_more": 0, "serious_events": 0}


def counts(p: int, e: int, g3: int, s: int) -> dict[str, int]:
    return {"participants": p, "events": e, "events_grade_3_or_more": g3, "serious_events": s}


@pytest.fixture
def events(make_participant, alice, nyc, requested_tasks):
    """Two participants in one arm (A1, A2), one in the other (B1), and an event at NYC (outside PDX's scope):
    A1: grade 3 serious cardiovascular + grade 1 plain; A2: grade 2 cardiovascular and dissociation;
    B1: grade 4 dissociation + grade 3 plain."""
    people = [make_participant("randomized") for _ in range(4)]
    arms = dict(AllocationSlot.objects.filter(participant__in=people).values_list("participant_id", "arm__code"))
    mdma = [p for p in people if arms[p.pk] == "mdma"]
    placebo = [p for p in people if arms[p.pk] == "placebo"]
    assert len(mdma) >= 2 and placebo  # blocks of 2 and 4 keep four randomizations balanced enough
    a1, a2, b1 = mdma[0], mdma[1], placebo[0]
    earlier = NOW - dt.timedelta(hours=4)
    record(
        alice,
        **mild_values(
            a1,
            severity_grade=3,
            seriousness=frozenset({"serious_hospitalisation"}),
            aesi_categories=["cardiovascular"],
            outcome="recovering",
        ),
    )
    record(alice, **mild_values(a1, onset_at=earlier))
    record(alice, **mild_values(a2, severity_grade=2, aesi_categories=["cardiovascular", "dissociation"]))
    record(alice, **mild_values(b1, severity_grade=4, aesi_categories=["dissociation"]))
    record(alice, **mild_values(b1, severity_grade=3, onset_at=earlier))
    bob = staff("bob-nyc", Role.COORDINATOR, nyc)
    outside = make_participant("randomized", site=nyc, by=bob)
    record(bob, **mild_values(outside, severity_grade=5, seriousness=frozenset({"serious_death"}), outcome="fatal"))
    return {"a1": a1, "a2": a2, "b1": b1}


def rows_by_category(rows):
    return {row["category"]: {k: row[k] for k in ZERO} for row in rows}


POOLED = {
    "any": counts(3, 5, 3, 1),
    "cardiovascular": counts(2, 2, 1, 1),
    "dissociation": counts(2, 2, 1, 0),
    "suicidality": ZERO,
    "abuse_misuse": ZERO,
    "positive_psychoactive": ZERO,
    "hepatic": ZERO,
}
MDMA = POOLED | {"any": counts(2, 3, 1, 1), "dissociation": counts(1, 1, 0, 0)}
PLACEBO = POOLED | {"any": counts(1, 2, 2, 0), "cardiovascular": ZERO, "dissociation": counts(1, 1, 1, 0)}


@pytest.mark.parametrize("role", ["admin", "unblinded_statistician"])
def test_roles_that_see_the_allocation_get_the_counts_per_arm(events, personas, api, role):
    r = api(personas[role]).get(URL)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["study"] == "MAP" and body["by_arm"] is True
    assert rows_by_category(body["pooled"]) == POOLED
    assert [row["category"] for row in body["pooled"]][:2] == ["any", "cardiovascular"]
    arms = {arm["arm"]: arm for arm in body["arms"]}
    assert list(arms) == ["mdma", "placebo"]
    assert rows_by_category(arms["mdma"]["rows"]) == MDMA
    assert rows_by_category(arms["placebo"]["rows"]) == PLACEBO
    randomized = AllocationSlot.objects.filter(participant__site__code="PDX")
    assert arms["mdma"]["randomized"] == randomized.filter(arm__code="mdma").count()
    assert arms["mdma"]["label"] == "Mdma"
    # The database holds the six events the counts come from (five at PDX).
    assert AdverseEvent.objects.filter(participant__site__code="PDX").count() == 5


@pytest.mark.parametrize("role", ["coordinator", "investigator", "therapist", "statistician"])
def test_blinded_roles_get_the_pooled_summary_with_no_arm_in_any_byte(events, personas, api, role):
    r = api(personas[role]).get(URL)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["by_arm"] is False and "arms" not in body
    assert rows_by_category(body["pooled"]) == POOLED
    for needle in (b"mdma", b"placebo", b"randomized"):
        assert needle not in r.content.lower(), needle
    assert not Study.objects.get(code="MAP").unblinded


def test_after_unblinding_an_investigator_sees_the_arms(events, personas, api):
    investigator = personas["investigator"]
    assert unblind_by_api(api, "MAP", investigator, personas["unblinded_statistician"]).status_code == 200
    body = api(investigator).get(URL).json()
    assert body["by_arm"] is True
    assert rows_by_category({a["arm"]: a for a in body["arms"]}["placebo"]["rows"]) == PLACEBO


def test_a_blinded_role_held_beside_an_unblinded_one_pools(events, personas, api, pdx):
    from participants.services import membership_grant

    admin = personas["admin"]
    membership_grant(user=admin, site=pdx, role=Role.STATISTICIAN, by=None)
    r = api(admin).get(URL)
    assert r.json()["by_arm"] is False and b"placebo" not in r.content.lower()


def test_a_rater_of_a_study_hiding_safety_data_gets_404(events, personas, api, study):
    rater = personas["rater"]
    assert study.hides_safety_from_raters
    r = api(rater).get(URL)
    assert r.status_code == 404 and b"cardiovascular" not in r.content
    Study.objects.filter(pk=study.pk).update(safety_hidden_from_raters=False)
    body = api(rater).get(URL).json()
    assert body["by_arm"] is False and rows_by_category(body["pooled"]) == POOLED


def test_nyc_sees_only_its_own_event(events, api, nyc):
    nyc_admin = staff("nyc-admin", Role.ADMIN, nyc)
    body = api(nyc_admin).get(URL).json()
    pooled = rows_by_category(body["pooled"])
    assert pooled["any"] == counts(1, 1, 1, 1)
    arm = AllocationSlot.objects.get(participant__site=nyc).arm.code
    by_arm = {a["arm"]: rows_by_category(a["rows"])["any"] for a in body["arms"]}
    assert by_arm[arm] == counts(1, 1, 1, 1)
    assert all(v == ZERO for code, v in by_arm.items() if code != arm)


def test_a_missing_study_is_the_first_and_a_bad_one_400_or_404(personas, api):
    r = api(personas["coordinator"]).get("/api/v1/adverse-events/summary/")
    assert r.status_code == 200 and r.json()["study"] == "MAP"  # the first study of the user's sites
    r = api(personas["coordinator"]).get("/api/v1/adverse-events/summary/?study=MAP%00")
    assert r.status_code == 400 and r.json()["study"] == ["not a study code"]
    assert api(personas["coordinator"]).get("/api/v1/adverse-events/summary/?study=NOPE").status_code == 404
    assert AdverseEvent.objects.count() == 0


def test_the_query_count_does_not_grow_with_the_events(events, personas, api, alice):
    admin = personas["admin"]
    with CaptureQueriesContext(connection) as small:
        assert api(admin).get(URL).status_code == 200
    for _ in range(20):
        record(alice, **mild_values(events["a1"], aesi_categories=["hepatic"]))
    with CaptureQueriesContext(connection) as large:
        body = api(admin).get(URL).json()
    assert len(large.captured_queries) == len(small.captured_queries)
    assert rows_by_category(body["pooled"])["hepatic"] == counts(1, 20, 0, 0)
