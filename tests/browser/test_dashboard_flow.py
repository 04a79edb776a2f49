"""A real Chromium signs an investigator in to the staff dashboard and acknowledges a safety alert from the home page
(htmx swaps the row in place), opens the participant's page from the alert, then signs out: every form post goes
through CSRF protection with the Origin the browser really sends under the site's referrer policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from assessments.models import SafetyAlert
from audit.models import AuditEvent
from scheduling.models import Visit
from tests.factories import staff
from trialsite.roles import Role

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
HIGH_RISK = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}
# Item codes and values only (never wording).
PCL5 = {f"PCL5_{i:02d}": 2 for i in range(1, 21)}
CAPS5 = {f"CAPS5_{i:02d}": 2 for i in range(1, 21)} | {
    "CAPS5_CRIT_A": 1,
    "CAPS5_DUR": 1,
    "CAPS5_DISTRESS": 1,
    "CAPS5_DEPERS": 0,
    "CAPS5_DEREAL": 0,
}

pytestmark = pytest.mark.integration


@pytest.mark.django_db(transaction=True)
def test_an_investigator_signs_in_and_acknowledges_an_alert_from_home(
    server_sessions_released, live_server, desk_page, make_participant, alice, pdx
):
    from scheduling.services import schedule_generate

    SHOTS.mkdir(parents=True, exist_ok=True)
    ivy = staff("ivy", Role.INVESTIGATOR, pdx)
    participant = make_participant("randomized")
    if not Visit.objects.filter(participant=participant).exists():
        schedule_generate(participant=participant, by=None)
    api = APIClient()
    api.force_authenticate(alice)
    screen = Visit.objects.get(participant=participant, code="SCREEN")
    entered = api.post(
        "/api/v1/responses/",
        {"participant_id": participant.participant_id, "visit_id": screen.pk, "instrument": "CSSRS_SCREEN",
         "answers": HIGH_RISK},
        format="json",
    )  # fmt: skip
    assert entered.status_code == 201, entered.content
    for instrument, answers in (("PCL5", PCL5), ("CAPS5", CAPS5)):  # scores for the participant page's charts
        entered = api.post(
            "/api/v1/responses/",
            {"participant_id": participant.participant_id, "visit_id": screen.pk, "instrument": instrument,
             "answers": answers},
            format="json",
        )  # fmt: skip
        assert entered.status_code == 201, entered.content
    alert = SafetyAlert.objects.get(participant=participant)

    page = desk_page
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("response", lambda response: problems.append(f"{response.status} {response.url}") if response.status >= 400 else None)  # fmt: skip

    page.goto(f"{live_server.url}/")
    assert page.url == f"{live_server.url}/login/"
    page.screenshot(path=str(SHOTS / "dashboard-01-sign-in.png"), full_page=True)
    page.get_by_label("Username").fill("ivy")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/home/")
    assert page.get_by_role("heading", name="Today", exact=True).is_visible()
    row = page.locator(f"#alert-{alert.pk}")
    assert participant.participant_id in row.inner_text()
    page.screenshot(path=str(SHOTS / "dashboard-02-home.png"), full_page=True)

    row.get_by_label("Acknowledgement note").fill("Called the participant; safety plan in place.")
    row.get_by_role("button", name="Acknowledge").click()
    page.locator(f"#alert-{alert.pk} .acknowledged").wait_for()
    # htmx swapped the row in place: the page was not reloaded.
    assert page.url == f"{live_server.url}/home/"
    assert "Acknowledged by ivy" in page.locator(f"#alert-{alert.pk}").inner_text()
    page.screenshot(path=str(SHOTS / "dashboard-03-acknowledged.png"), full_page=True)
    alert.refresh_from_db()
    assert (alert.acknowledged_by, alert.acknowledgement_note) == (ivy, "Called the participant; safety plan in place.")
    assert AuditEvent.objects.filter(entity_type="safety_alert", entity_id=str(alert.pk), actor=ivy).exists()

    # The participant's id in the alert links to the participant page: the record, its visit timeline and history.
    page.locator(f"#alert-{alert.pk}").get_by_role("link", name=participant.participant_id).click()
    page.wait_for_url(f"**/participants/{participant.participant_id}/")
    assert page.get_by_role("heading", name=f"Participant {participant.participant_id}").is_visible()
    assert page.get_by_role("img", name="Visit timeline").is_visible()
    assert page.locator("#visit-SCREEN").is_visible()
    assert "CSSRS_SCREEN" in page.locator("#questionnaires").inner_text()
    assert page.get_by_role("img", name="PCL-5 over study days").is_visible()
    page.screenshot(path=str(SHOTS / "dashboard-04-participant.png"), full_page=True)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/")
    assert AuditEvent.objects.filter(action="logout", actor=ivy).exists()
    assert problems == []
