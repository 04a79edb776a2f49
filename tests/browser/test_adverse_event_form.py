"""Recording an adverse event from a real Chromium: the coordinator opens the log, follows "Record an adverse
event", fills the form (a serious event of special interest) and lands on the event's page; the row, its reporting
clock and its audit event are in the database, and axe-core finds no serious or critical violation on the log, the
form (empty and with its errors) and the event's page.

The live server runs on the real clock (a browser drops a session cookie that a moved server clock dates in the
past), so the onset is typed as a time earlier today at the site."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from audit.models import AuditEvent
from safety.models import AdverseEvent
from tests.browser.test_accessibility import AXE, SHOTS, check
from tests.dashboard.world import PASSWORD, build_world

pytestmark = pytest.mark.integration


@pytest.mark.django_db(transaction=True)
def test_a_coordinator_records_a_serious_adverse_event_through_the_form(
    server_sessions_released, live_server, chromium
):
    assert AXE.exists(), "axe-core is missing: run `npm ci` (make test does)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    world = build_world()
    site = world.sites["PDX"]
    participant = site.participants["randomized3"]
    coordinator = site.coordinator
    before = set(AdverseEvent.objects.values_list("pk", flat=True))
    zone = zoneinfo.ZoneInfo(site.site.time_zone)
    onset = (dt.datetime.now(zone) - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    try:
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(coordinator.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/home/")

        page.get_by_role("link", name="Adverse events").click()
        page.wait_for_url("**/adverse-events/")
        assert page.get_by_role("heading", name="Adverse event log").is_visible()
        problems += check(page, "ae-log")
        page.get_by_role("link", name="Record an adverse event").click()
        page.wait_for_url("**/adverse-events/new/")
        problems += check(page, "ae-form")

        # Sent empty first: the page keeps what was typed and names each missing field.
        page.get_by_label("Participant id").fill(participant.participant_id)
        page.get_by_role("button", name="Record the event").click()
        page.locator("#form-errors").wait_for()
        assert "Nothing was saved." in page.locator("#form-errors").inner_text()
        assert page.get_by_label("Participant id").input_value() == participant.participant_id
        problems += check(page, "ae-form-errors")
        assert set(AdverseEvent.objects.values_list("pk", flat=True)) == before

        page.get_by_label("Event (verbatim)").fill("fainted in the corridor after the session")
        page.get_by_label("Coded term code").fill("10042772")
        page.get_by_label("Coded term", exact=True).fill("Syncope")
        page.get_by_label("Onset").fill(onset.strftime("%Y-%m-%dT%H:%M"))
        page.get_by_label("Severity grade (CTCAE)").select_option("3")
        page.get_by_label("Hospitalisation or its prolongation").check()
        page.get_by_label("Cardiovascular").check()
        page.get_by_label("Related to the study drug").select_option("possible")
        page.get_by_label("Related to the therapy").select_option("unlikely")
        page.get_by_label("Expectedness").select_option("unexpected")
        page.get_by_label("Action taken with the study drug").select_option("dose_not_changed")
        page.get_by_label("Outcome").select_option("recovering")
        page.get_by_role("button", name="Record the event").click()
        page.wait_for_url("**/adverse-events/*/")
        assert page.get_by_role("heading", name="Adverse event: fainted in the corridor after the session").is_visible()
        assert "Adverse event recorded for" in page.content()
        problems += check(page, "ae-detail")
    finally:
        context.close()

    event = AdverseEvent.objects.exclude(pk__in=before).get()
    assert event.participant_id == participant.pk and event.recorded_by_id == coordinator.pk
    assert event.onset_at == onset.astimezone(dt.UTC)
    assert event.serious and event.serious_hospitalisation and event.aesi_categories == ["cardiovascular"]
    assert event.severity_grade == 3 and event.coded_term_text == "Syncope"
    assert event.reporting_due_at is not None and event.reviewed_at is None
    assert AuditEvent.objects.filter(
        entity_type="adverse_event", entity_id=str(event.pk), action="create", actor=coordinator
    ).exists()
    assert not problems, "axe found serious or critical violations:\n" + "\n".join(problems)
