"""Every staff form on the dashboard's pages, posted from a real Chromium through CSRF protection with the Origin the
browser really sends: sign-in, the language page and the language switch, the password change, an alert's
acknowledgement and a failed message's retry (htmx, in place), the matrix's contact search, and sign-out. Each is
checked on the page and in the database (the row and its audit event)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assessments.models import SafetyAlert
from audit.models import AuditEvent
from notifications.models import Notification
from participants.models import StaffProfile
from tests.dashboard.world import PASSWORD, build_world

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
NEW_PASSWORD = "a much longer new secret 42"

pytestmark = pytest.mark.integration


@pytest.mark.django_db(transaction=True)
def test_every_staff_form_posts_from_the_browser(server_sessions_released, live_server, desk_page):
    SHOTS.mkdir(parents=True, exist_ok=True)
    world = build_world()
    user = world.users["investigator"]  # at both sites: may acknowledge, retry and search contacts
    site = world.sites["PDX"]
    alert, message = site.alert, site.notification
    page = desk_page
    problems: list[str] = []
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    # Sign in.
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/home/")
    assert page.get_by_role("heading", name="Today", exact=True).is_visible()
    assert AuditEvent.objects.filter(action="login", actor=user).count() == 1

    # Acknowledge the alert (htmx swaps the row).
    row = page.locator(f"#alert-{alert.pk}")
    row.get_by_label("Acknowledgement note").fill("Called; safety plan in place.")
    row.get_by_role("button", name="Acknowledge").click()
    page.locator(f"#alert-{alert.pk} .acknowledged").wait_for()
    assert f"Acknowledged by {user.username}" in page.locator(f"#alert-{alert.pk}").inner_text()
    alert = SafetyAlert.objects.get(pk=alert.pk)
    assert (alert.acknowledged_by, alert.acknowledgement_note) == (user, "Called; safety plan in place.")
    assert AuditEvent.objects.filter(entity_type="safety_alert", entity_id=str(alert.pk), actor=user).exists()

    # Retry the failed message (htmx swaps the row).
    page.locator(f"#notification-{message.pk}").get_by_role("button", name="Retry").click()
    page.locator(f"#notification-{message.pk}").get_by_text("Queued to send again.").wait_for()
    message = Notification.objects.get(pk=message.pk)
    assert (message.status, message.attempts) == (Notification.Status.PENDING, 0)
    assert AuditEvent.objects.filter(entity_type="notification", entity_id=str(message.pk), actor=user).exists()
    page.screenshot(path=str(SHOTS / "forms-01-home-after-actions.png"), full_page=True)

    # The matrix's contact search: ids only on the page, the search audited by kind and count.
    page.goto(f"{live_server.url}/matrix/?study={world.study.code}")
    page.get_by_label("Search by", exact=True).select_option("name")
    page.get_by_label("Name, e-mail or phone").fill("Rand 1")
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_text("2 participants match the contact search.").wait_for()
    body = page.content()
    for participant in (world.sites["PDX"].participants["randomized1"], world.sites["NYC"].participants["randomized1"]):
        assert participant.participant_id in body
    assert "Rand 1" not in body
    searched = AuditEvent.objects.filter(entity_type="contact_search", actor=user)
    assert sorted(searched.values_list("field", "new_value")) == [("query_kind", "name"), ("result_count", 2)]
    page.screenshot(path=str(SHOTS / "forms-02-contact-search.png"), full_page=True)

    # The language page, then the switch in the header back to English.
    page.goto(f"{live_server.url}/settings/language/")
    page.locator("main").get_by_label("Language").select_option("es")
    page.locator("main").get_by_role("button", name="Save").click()
    page.get_by_text("Idioma guardado.").wait_for()
    assert StaffProfile.objects.get(user=user).language == "es"
    page.locator("#nav-language").select_option("en")
    page.locator(".language-switch").get_by_role("button").click()
    page.get_by_text("Language saved.").wait_for()
    assert StaffProfile.objects.get(user=user).language == "en"
    assert AuditEvent.objects.filter(actor=user, field="language").count() == 2

    # Change the password.
    page.goto(f"{live_server.url}/password/")
    page.get_by_label("Old password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url("**/password/done/")
    assert page.get_by_text("Your password has been changed.").is_visible()
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)

    # Sign out; the new password signs in again.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/")
    assert AuditEvent.objects.filter(action="logout", actor=user).count() == 1
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/home/")
    assert AuditEvent.objects.filter(action="login", actor=user).count() == 2
    assert problems == []
