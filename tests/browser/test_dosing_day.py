"""The dosing-day screen on a tablet (820 x 1180, touch): the administrator (the world's study is a blinded waitlist
design, whose dosing sessions the blinded roles are not shown) records a vital sign over a threshold at a
declared timepoint through the real form (CSRF, the Origin the browser sends), sees it marked in words and its alert
listed, is refused closing without the missing-timepoints reason (the timepoints named on the field, what was typed
kept), and closes with a reason. The page never scrolls sideways and axe-core finds no serious or critical violation;
a screenshot of each step goes to test-artifacts/screenshots/.

The live server runs on the real clock; the world's session and its times lie in the past, as recorded ones do."""

from __future__ import annotations

import pytest
from django.urls import reverse

from assessments.models import SafetyAlert
from audit.models import AuditEvent
from safety.models import DosingSession, VitalSign
from tests.browser.test_accessibility import AXE, SHOTS, check
from tests.dashboard.world import PASSWORD, build_world

pytestmark = pytest.mark.integration

NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def tablet_page(chromium):
    context = chromium.new_context(
        viewport={"width": 820, "height": 1180}, has_touch=True, locale="en-US", bypass_csp=True
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield page
    finally:
        context.close()


@pytest.mark.django_db(transaction=True)
def test_a_vital_sign_is_recorded_and_the_session_closed_with_a_reason_on_a_tablet(
    server_sessions_released, live_server, tablet_page
):
    assert AXE.exists()
    SHOTS.mkdir(parents=True, exist_ok=True)
    world = build_world()
    site = world.sites["PDX"]
    session = site.dosing_session
    page = tablet_page
    problems: list[str] = []
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 500 else None)

    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(world.users["admin"].username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/home/")

    # From the participant page's timeline to the screen.
    page.goto(f"{live_server.url}{reverse('dashboard-participant', args=[session.participant.participant_id])}")
    page.locator("#visit-DOSE1").get_by_role("link", name="Dosing day").click()
    page.wait_for_url(f"**{reverse('dashboard-dosing-day', args=[session.visit_id])}")
    assert session.kit_identifier in page.locator("#session").inner_text()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    axe = check(page, "dosing-day-tablet-open")

    # Record the vital signs at T60 from the grid's row: over the systolic threshold.
    page.locator("#timepoint-T60").get_by_role("link", name="Record").click()
    form = page.locator("#vital-form")
    assert form.get_by_label("Timepoint").input_value() == "T60"
    form.get_by_label("Measured at").fill("2026-03-02T09:30")
    form.get_by_label("Systolic BP (mmHg)").fill("171")
    form.get_by_label("Diastolic BP (mmHg)").fill("92")
    form.get_by_label("Heart rate (/min)").fill("96")
    form.get_by_label("Temperature (°C)").fill("37.1")
    form.get_by_role("button", name="Record the vital signs").click()
    page.get_by_text("Vital signs recorded at T60.").wait_for()
    row = page.locator("#timepoint-T60")
    assert "over threshold (> 160)" in row.inner_text()
    vital = VitalSign.objects.get(session=session, timepoint_code="T60")
    assert (vital.systolic_bp, vital.heart_rate, vital.recorded_by.username) == (171, 96, world.users["admin"].username)
    alert = SafetyAlert.objects.get(source="vital_sign", source_id=vital.pk)
    assert alert.message in page.locator("#dosing-alerts").inner_text()
    assert AuditEvent.objects.filter(entity_type="vital_sign", entity_id=str(vital.pk), action="create").exists()
    page.screenshot(path=str(SHOTS / "dosing-day-tablet-vitals.png"), full_page=True)

    # Closing without the reason is refused, the missing timepoints named on the field.
    close = page.locator("#close-form")
    close.get_by_role("button", name="Close the session").click()
    page.locator("#id_missing_timepoints_reason_error").wait_for()
    assert "T120" in page.locator("#id_missing_timepoints_reason_error").inner_text()
    session.refresh_from_db()
    assert session.closed_at is None
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    axe += check(page, "dosing-day-tablet-close-refused")

    # With the reason it closes.
    page.locator("#close-form").get_by_label("Why timepoints have no vital signs").fill("participant asleep")
    page.locator("#close-form").get_by_role("button", name="Close the session").click()
    page.get_by_text("The dosing session is closed.").wait_for()
    session = DosingSession.objects.get(pk=session.pk)
    assert session.closed_at is not None and session.missing_timepoints_reason == "participant asleep"
    assert AuditEvent.objects.filter(entity_type="dosing_session", reason="participant asleep").exists()
    assert "participant asleep" in page.locator("#session").inner_text()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    axe += check(page, "dosing-day-tablet-closed")
    page.screenshot(path=str(SHOTS / "dosing-day-tablet-closed.png"), full_page=True)
    assert not problems, problems
    assert not axe, "axe found serious or critical violations:\n" + "\n".join(axe)
