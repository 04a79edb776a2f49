"""The study overview: the flow counted by what happened (every stage, screen-failure reasons, each withdrawal
level) per site and for the user's sites, site scoping, enrolment by UTC week against the target at a moved clock,
visit adherence, arms only for unblinded roles (no arm code, label or arm-only visit in any byte for blinded roles),
a GET that writes nothing, and a query count that does not grow with the study."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from participants import services as participant_services
from participants.models import Participant
from scheduling import services as scheduling_services
from scheduling.models import Visit
from tests.conftest import advance
from tests.dashboard.conftest import page_text
from tests.factories import build_study, staff
from tests.support import dbstate
from trialsite.roles import ALWAYS_BLINDED, Role

pytestmark = pytest.mark.django_db

PDX_TZ = zoneinfo.ZoneInfo("America/Los_Angeles")
T0 = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)  # Monday 2 March, 09:00 in Portland
NOW = dt.datetime(2026, 4, 10, 19, 0, tzinfo=dt.UTC)  # Friday 10 April, 12:00 in Portland


def person(study, site, by, to="screening"):
    with transaction.atomic():
        participant = participant_services.participant_create(
            study=study, site=site, by=by, contact={"full_name": "Test Person", "email": "person@example.org"}
        )
    return advance(participant, to, by=by)


def screen_fail(study, site, by, answers, *, override=None):
    participant = person(study, site, by)
    with transaction.atomic():
        participant_services.eligibility_record(
            participant=participant,
            answers=answers,
            override=override,
            reason="investigator judgement" if override is not None else None,
            by=by,
        )
    return participant


def set_status(participant, status, by):
    with transaction.atomic():
        participant_services.participant_update(participant=participant, status=status, reason="per protocol", by=by)


def withdraw(participant, level, by):
    with transaction.atomic():
        participant_services.participant_withdraw(
            participant=participant, level=level, reason="participant's wish", date=dt.date(2026, 3, 2), by=by
        )


def overview(client, user, **query):
    client.force_login(user)
    return client.get("/overview/", query)


def row_cells(body: str, row_id: str) -> list[str]:
    """The text of the cells (after the row header) of the table row with that id."""
    match = re.search(rf'<tr[^>]*id="{re.escape(row_id)}"[^>]*>(.*?)</tr>', body, re.S)
    assert match, f"no row {row_id}"
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.S)]


def reason_cells(body: str, label_start: str) -> list[str]:
    match = re.search(rf"<tr>\s*<th scope=\"row\">{re.escape(label_start)}.*?</tr>", body, re.S)
    assert match, f"no reason row {label_start}"
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", match.group(0), re.S)]


FLOW_KEYS = (
    "screened",
    "screen_failed",
    "consented",
    "enrolled",
    "randomized",
    "in_treatment",
    "completed",
    "withdrawn",
    "withdrawn_stop_contact",
    "withdrawn_stop_follow_up",
    "withdrawn_stop_data_use",
    "lost_to_follow_up",
)
# What each site's hand-built population reached (see ``population``), in the order of FLOW_KEYS.
PDX_FLOW = (13, 2, 9, 8, 6, 3, 1, 3, 1, 1, 1, 1)
NYC_FLOW = (4, 2, 2, 1, 1, 0, 0, 1, 1, 0, 0, 0)


@pytest.fixture
def population(study, pdx, nyc, alice, bob):
    """Every stage of the flow at PDX, a smaller flow at NYC."""
    ok = {"INC_AGE": True, "EXC_PREG": False}
    with time_machine.travel(T0, tick=False):
        person(study, pdx, alice)  # still screening
        person(study, pdx, alice, "eligible")  # eligible, not yet consented
        screen_fail(study, pdx, alice, {"INC_AGE": False, "EXC_PREG": False})
        screen_fail(study, pdx, alice, {"INC_AGE": False, "EXC_PREG": True})
        person(study, pdx, alice, "consented")
        person(study, pdx, alice, "enrolled")
        person(study, pdx, alice, "randomized")
        treated = person(study, pdx, alice, "randomized")
        set_status(treated, "in_treatment", alice)
        done = person(study, pdx, alice, "randomized")
        set_status(done, "in_treatment", alice)
        set_status(done, "completed", alice)
        # Withdrawn at each level, after reaching different stages: they still count at those stages.
        withdraw(person(study, pdx, alice, "randomized"), "stop_contact", alice)
        left_treatment = person(study, pdx, alice, "randomized")
        set_status(left_treatment, "in_treatment", alice)
        withdraw(left_treatment, "stop_follow_up", alice)
        withdraw(person(study, pdx, alice, "enrolled"), "stop_data_use", alice)
        set_status(person(study, pdx, alice, "randomized"), "lost_to_follow_up", alice)

        screen_fail(study, nyc, bob, {"INC_AGE": True, "EXC_PREG": True})
        screen_fail(study, nyc, bob, ok, override=False)  # no criterion failed: the investigator's decision
        person(study, nyc, bob, "randomized")
        withdraw(person(study, nyc, bob, "consented"), "stop_contact", bob)
    assert Participant.objects.filter(site=pdx).count() == 13


def flow_of(body: str) -> dict[str, list[str]]:
    return {key: row_cells(body, f"flow-{key}") for key in FLOW_KEYS}


# --- the flow -------------------------------------------------------------------------------------------------------


def test_the_flow_counts_every_stage_reached_per_site_and_for_all_sites(client, population, pdx, nyc):
    both = staff("carol", Role.COORDINATOR, pdx, nyc)
    body = page_text(overview(client, both))
    assert re.search(r'<th scope="col" class="num">NYC</th><th scope="col" class="num">PDX</th>', body)
    flow = flow_of(body)
    for key, n_nyc, n_pdx in zip(FLOW_KEYS, NYC_FLOW, PDX_FLOW, strict=True):
        assert flow[key] == [str(n_nyc), str(n_pdx), str(n_nyc + n_pdx)], key
    # Reasons: each failed criterion per site (a participant failing two counts under both), then the override.
    assert reason_cells(body, "INC_AGE") == ["Inclusion", "0", "2", "2"]
    assert reason_cells(body, "EXC_PREG") == ["Exclusion", "1", "1", "2"]
    assert reason_cells(body, "No criterion failed") == ["—", "1", "0", "1"]
    assert "Each participant counts at every stage they reached" in body


def test_a_coordinator_sees_only_their_sites_and_the_total_adds_only_those(client, population):
    for user, expected, other in (("alice", PDX_FLOW, "NYC"), ("bob", NYC_FLOW, "PDX")):
        body = page_text(overview(client, _user(user)))
        flow = flow_of(body)
        for key, n in zip(FLOW_KEYS, expected, strict=True):
            assert flow[key] == [str(n), str(n)], (user, key)
        assert f'class="num">{other}</th>' not in body
    body = page_text(overview(client, _user("bob")))
    assert "INC_AGE" not in body  # PDX's reasons are not NYC's
    assert reason_cells(body, "EXC_PREG") == ["Exclusion", "1", "1"]


def _user(username):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


def test_the_first_study_is_the_default_and_a_study_elsewhere_is_not_found(client, study, alice):
    build_study(code="SAM", arms=("immediate", "delayed"), protocol_code="samati-v1", site_codes=("PDX",))
    response = overview(client, alice)
    assert response.context["study"].code == "MAP"
    assert "Study MAP" in page_text(response)
    assert "Study SAM" in page_text(overview(client, alice, study="SAM"))
    assert overview(client, alice, study="NOPE").status_code == 404
    assert 'href="/overview/" aria-current="page"' in page_text(response)


# --- enrolment over time --------------------------------------------------------------------------------------------


def test_enrollment_by_utc_week_against_the_target(client, study, pdx, alice):
    with transaction.atomic():
        participant_services.study_update(study=study, target_enrollment=10, reason="planned sample", by=None)
    for when in (T0, T0 + dt.timedelta(days=2)):
        with time_machine.travel(when, tick=False):
            person(study, pdx, alice, "enrolled")
    # Sunday 8 March 20:00 in Portland is Monday 9 March 03:00 UTC: a UTC week counts it in the week of 9 March.
    with time_machine.travel(dt.datetime(2026, 3, 8, 20, 0, tzinfo=PDX_TZ), tick=False):
        person(study, pdx, alice, "enrolled")
    with time_machine.travel(dt.datetime(2026, 3, 17, 9, 0, tzinfo=PDX_TZ), tick=False):
        person(study, pdx, alice, "enrolled")
        person(study, pdx, alice, "consented")  # not enrolled: not counted
    with time_machine.travel(dt.datetime(2026, 3, 25, 12, 0, tzinfo=dt.UTC), tick=False):
        body = page_text(overview(client, alice))
    table = body.split('<table class="enrollment-table">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<th scope="row">([\d-]+)</th>((?:<td[^>]*>[^<]*</td>\s*)+)', table)
    got = [(week, re.findall(r">([^<]*)</td>", cells)) for week, cells in rows]
    assert got == [
        ("2026-03-02", ["2", "2", "10", "20 %"]),
        ("2026-03-09", ["1", "3", "10", "30 %"]),
        ("2026-03-16", ["1", "4", "10", "40 %"]),
        ("2026-03-23", ["0", "4", "10", "40 %"]),
    ]
    assert "Weeks run Monday to Sunday in UTC" in body
    # The chart: one marker per week, the line through them, the target drawn as a line at 10 of a 0-10 axis.
    chart = body.split('<svg class="enrollment-chart"', 1)[1].split("</svg>", 1)[0]
    assert len(re.findall(r"<circle ", chart)) == 4
    assert re.search(r'<g class="target-line">\s*<line x1="48.0" x2="624.0" y1="16.0" y2="16.0">', chart)
    assert "Target: 10" in chart
    assert re.search(r'<polyline points="48\.0,[\d.]+ 240\.0,[\d.]+ 432\.0,[\d.]+ 624\.0,[\d.]+"/>', chart)
    # A later clock adds the weeks up to the current one.
    with time_machine.travel(dt.datetime(2026, 4, 8, 12, 0, tzinfo=dt.UTC), tick=False):
        later = page_text(overview(client, alice))
    assert row_texts_after(later, "2026-04-06") == ["0", "4", "10", "40 %"]


def row_texts_after(body: str, week: str) -> list[str]:
    match = re.search(rf'<th scope="row">{week}</th>((?:<td[^>]*>[^<]*</td>\s*)+)', body)
    assert match, week
    return re.findall(r">([^<]*)</td>", match.group(1))


def test_no_enrolment_yet_is_said(client, study, alice):
    body = page_text(overview(client, alice))
    assert "No participant has been enrolled yet." in body and "enrollment-chart" not in body


# --- adherence and blinding (SAM: the delayed arm has a visit of its own) -------------------------------------------

ARM_WORDS = ("immediate", "delayed")  # the SAM arms' codes and (case aside) labels
ARM_ONLY = ("WAIT_END", "End-of-delay")  # the delayed arm's own visit: its code and name


@pytest.fixture
def sam(study_sites):
    study, _sites = build_study(
        code="SAM", arms=("immediate", "delayed"), protocol_code="samati-v1", per_stratum=50, site_codes=("PDX", "NYC")
    )
    return study


def screen_visit(participant) -> Visit:
    return Visit.objects.get(participant=participant, code="SCREEN")


@pytest.fixture
def adherence(sam, pdx, nyc, alice, bob):
    """SCREEN visits (window: the enrolment day + 28 days) at NOW: one done in window, one done late, one not done
    with its window closed, one missed, one whose window is still open, one cancelled by a withdrawal; and one at
    NYC done in window."""
    with time_machine.travel(T0, tick=False):
        in_window, late, overdue, missed, cancelled = (person(sam, pdx, alice, "randomized") for _ in range(5))
        nyc_done = person(sam, nyc, bob, "randomized")
    with time_machine.travel(T0 + dt.timedelta(days=1), tick=False), transaction.atomic():
        scheduling_services.visit_complete(
            visit=screen_visit(in_window), occurred_at=T0 + dt.timedelta(days=1), by=alice
        )
        scheduling_services.visit_complete(visit=screen_visit(nyc_done), occurred_at=T0 + dt.timedelta(days=1), by=bob)
        scheduling_services.visit_miss(visit=screen_visit(missed), reason="did not come", by=alice)
    withdraw(cancelled, "stop_follow_up", alice)
    with time_machine.travel(dt.datetime(2026, 4, 5, 17, 0, tzinfo=dt.UTC), tick=False), transaction.atomic():
        scheduling_services.visit_complete(
            visit=screen_visit(late), occurred_at=dt.datetime(2026, 4, 5, 10, 0, tzinfo=PDX_TZ), by=alice
        )
    with time_machine.travel(dt.datetime(2026, 3, 25, 17, 0, tzinfo=dt.UTC), tick=False):
        person(sam, pdx, alice, "randomized")  # window 25 March - 22 April: open at NOW
    return {"overdue": overdue}


def test_adherence_counts_visits_due_and_completed_in_their_window(client, adherence, alice, pdx, nyc):
    both = staff("carol", Role.COORDINATOR, pdx, nyc)
    with time_machine.travel(NOW, tick=False):
        body = page_text(overview(client, alice, study="SAM"))
        # Due: in window, late, overdue, missed (cancelled left out, the open window not yet due).
        assert row_cells(body, "adherence-SCREEN") == ["4", "2", "1", "25 %"]
        assert re.search(r"<title>SCREEN: 25 % \(1/4\)</title>", body)
        assert row_cells(page_text(overview(client, both, study="SAM")), "adherence-SCREEN") == ["5", "3", "2", "40 %"]
    # At an earlier clock the overdue and missed windows had not closed yet: only the completed ones are due.
    with time_machine.travel(dt.datetime(2026, 3, 20, 19, 0, tzinfo=dt.UTC), tick=False):
        body = page_text(overview(client, alice, study="SAM"))
    assert row_cells(body, "adherence-SCREEN") == ["2", "2", "1", "50 %"]


def _randomized_per_arm(sam, site_ids):
    from participants.models import AllocationSlot

    counts: dict[str, int] = {}
    for code in AllocationSlot.objects.filter(participant__study=sam, participant__site_id__in=site_ids).values_list(
        "arm__code", flat=True
    ):
        counts[code] = counts.get(code, 0) + 1
    return counts


def test_an_unblinded_role_sees_the_randomized_per_arm_and_every_visit(client, adherence, sam, pdx, personas):
    with time_machine.travel(NOW, tick=False):
        body = page_text(overview(client, personas[Role.UNBLINDED_STATISTICIAN], study="SAM"))
    expected = _randomized_per_arm(sam, [pdx.pk])
    assert sum(expected.values()) == 6
    for code, label in (("immediate", "Immediate"), ("delayed", "Delayed")):
        n = str(expected.get(code, 0))
        assert row_cells(body, f"arm-{code}") == [n, n]
        assert f'{label} <span class="code">({code})</span>' in body
    assert 'id="adherence-WAIT_END"' in body and "Randomized per arm" in body


@pytest.mark.parametrize("role", sorted({*ALWAYS_BLINDED, Role.COORDINATOR, Role.THERAPIST, Role.INVESTIGATOR}))
def test_blinded_roles_get_no_arm_and_no_arm_only_visit_in_any_byte(client, adherence, personas, role):
    with time_machine.travel(NOW, tick=False):
        response = overview(client, personas[role], study="SAM")
    body = page_text(response).lower()
    for word in (*ARM_WORDS, *(w.lower() for w in ARM_ONLY), "randomized per arm", 'id="arms"'):
        assert word not in body, (role, word)
    assert response.context["arms"] is None
    assert row_cells(page_text(response), "adherence-SCREEN") == ["4", "2", "1", "25 %"]
    assert "Only the visits that every arm of the study has are shown." in page_text(response)


# --- queries and purity ---------------------------------------------------------------------------------------------


def count_queries(client, user) -> int:
    with time_machine.travel(NOW, tick=False):
        client.force_login(user)
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/overview/", {"study": "SAM"})
    assert response.status_code == 200
    return len(captured)


def test_the_query_count_does_not_grow_with_the_participants(client, sam, pdx, personas):
    user = personas[Role.UNBLINDED_STATISTICIAN]
    stages = ("screening", "consented", "enrolled", "randomized", "randomized")
    with time_machine.travel(T0, tick=False):
        for i in range(10):
            person(sam, pdx, personas[Role.COORDINATOR], stages[i % 5])
    ten = count_queries(client, user)
    with time_machine.travel(T0, tick=False):
        for i in range(30):
            person(sam, pdx, personas[Role.COORDINATOR], stages[i % 5])
    forty = count_queries(client, user)
    body = page_text(overview(client, user, study="SAM"))
    assert row_cells(body, "flow-screened") == ["40", "40"] and row_cells(body, "flow-randomized") == ["16", "16"]
    assert ten == forty, (ten, forty)


def test_a_get_of_the_overview_writes_nothing(client, adherence, alice, settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"  # the session row is HTTP state
    names = dbstate.tables()
    with time_machine.travel(NOW, tick=False):
        client.force_login(alice)
        audit_rows = AuditEvent.objects.count()
        before = dbstate.snapshot(names)
        for params in ({}, {"study": "SAM"}, {"study": "MAP"}):
            assert client.get("/overview/", params).status_code == 200
        assert dbstate.differences(before, dbstate.snapshot(names)) == {}
    assert AuditEvent.objects.count() == audit_rows


def test_the_page_is_in_spanish_for_a_spanish_speaker(client, population, alice):
    with transaction.atomic():
        participant_services.staff_language_set(user=alice, language="es", by=alice)
    body = page_text(overview(client, alice))
    assert "Resumen del estudio" in body and "Flujo del estudio" in body and "Adherencia a las visitas" in body
