"""Every staff form on the dashboard's pages, posted from a real Chromium through CSRF protection with the Origin the
browser really sends: sign-in, the language page and the language switch, the password change, an alert's
acknowledgement and a failed message's retry (htmx, in place), the matrix's contact search, a participant taken from
creation to randomization, a visit scheduled and one completed, a questionnaire opened early and its link sent by
e-mail and shown as a QR code, a dosing session booked on the calendar, the withdrawal, the overview, the rooms
created and retired (as an administrator), and sign-out. Each is checked on the page and in the database (the row and
its audit event).

The live server runs on the real clock (a browser drops a session cookie that a moved server clock dates in the
past), so the participant of these forms is made here, now, and its visits are planned from today."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest
from django.urls import reverse

from assessments.models import Administration, ParticipantLink, SafetyAlert
from audit.models import AuditEvent
from notifications.models import Notification
from participants.models import Participant, StaffProfile
from scheduling.models import Room, Visit
from tests.dashboard.world import PASSWORD, build_world, hits

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

    # Open the failed messages' list from its link (with its count), and retry the message (htmx swaps the row).
    page.locator('.worklist-index a[href="?list=failed#failed"]').click()
    page.wait_for_url("**/home/?list=failed#failed")
    assert page.locator("#failed-title").is_visible()
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

    participant_forms(page, live_server.url, world, user)

    # The overview: a read, so nothing is written; the blinded investigator sees the flow and no arm.
    before = AuditEvent.objects.count()
    page.goto(f"{live_server.url}/overview/?study={world.study.code}")
    page.get_by_role("heading", name="Study overview").wait_for()
    assert hits(page.content()) == []
    assert AuditEvent.objects.count() == before
    page.screenshot(path=str(SHOTS / "forms-09-overview.png"), full_page=True)

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
    assert AuditEvent.objects.filter(actor=user, field="language", entity_type="staff_profile").count() == 2

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

    room_forms(page, live_server.url, world)
    assert problems == []


def audited(entity_type: str, entity_id: object, actor) -> bool:
    return AuditEvent.objects.filter(entity_type=entity_type, entity_id=str(entity_id), actor=actor).exists()


def submit(page, button: str) -> None:
    page.locator("main").get_by_role("button", name=button, exact=True).click()


def local_input(moment: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    """A datetime-local input's value: the site's wall-clock time."""
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def participant_forms(page, base: str, world, user) -> None:
    """A new participant through the action pages, as the (blinded) investigator: created, screened eligible,
    consented, enrolled, randomized; a visit scheduled and one completed; a questionnaire opened early and its link
    sent by e-mail and shown as a QR code; then withdrawn."""
    site = world.sites["PDX"].site
    zone = zoneinfo.ZoneInfo(site.time_zone)

    page.goto(f"{base}/participants/new/")
    page.get_by_label("Site").select_option(site.code)
    page.get_by_label("Study").select_option(world.study.code)
    page.get_by_label("Name").fill("Browser Person")
    page.get_by_label("E-mail").fill("browser.person@ex.org")
    submit(page, "Create participant")
    page.get_by_text("created.").wait_for()
    participant = Participant.objects.filter(site=site).latest("id")
    assert participant.status == "screening" and participant.contact.email == "browser.person@ex.org"
    assert f"Participant {participant.participant_id} created." in page.content()
    assert audited("participant", participant.pk, user)
    own = reverse("dashboard-participant", args=[participant.participant_id])

    steps = [  # the participant page's link, what to fill, the button, the message, the status after
        ("Record eligibility", {"#id_criterion_INC_AGE": "yes", "#id_criterion_EXC_PREG": "no"}, "Save answers",
         "Eligibility recorded.", "eligible"),
        ("Record consent", {}, "Record consent", "Consent on version 1.0 recorded.", "consented"),
        ("Enroll", {}, "Enroll", "Participant enrolled.", "enrolled"),
        ("Randomize", {}, "Randomize", "Participant randomized.", "randomized"),
    ]  # fmt: skip
    for link, selects, button, message, status in steps:
        page.goto(f"{base}{own}")
        page.locator("main").get_by_role("link", name=link, exact=True).click()
        for selector, value in selects.items():
            page.locator(selector).select_option(value)
        if button == "Randomize":
            page.get_by_label("I confirm the randomization").check()
        submit(page, button)
        page.get_by_text(message).wait_for()
        assert Participant.objects.get(pk=participant.pk).status == status, link
        assert hits(page.content()) == [], link  # the blinded investigator learns no arm, randomized or not
    assert [c.obtained_by for c in participant.consents.all()] == [user]
    assert sorted(a.criterion.code for a in participant.eligibility_answers.all()) == ["EXC_PREG", "INC_AGE"]
    assert AuditEvent.objects.filter(actor=user, field="status", entity_id=str(participant.pk)).count() >= 4
    page.screenshot(path=str(SHOTS / "forms-03-randomized.png"), full_page=True)

    # Schedule the baseline inside its window; complete the screening visit now.
    baseline = Visit.objects.get(participant=participant, code="BASELINE")
    start = dt.datetime.combine(baseline.window_start, dt.time(10, 0), zone)
    page.goto(f"{base}{reverse('dashboard-visit-schedule', args=[baseline.pk])}")
    page.get_by_label("Start", exact=True).fill(local_input(start, zone))
    submit(page, "Save booking")
    page.get_by_text("Visit BASELINE scheduled.").wait_for()
    baseline.refresh_from_db()
    assert (baseline.status, baseline.scheduled_start) == (Visit.Status.SCHEDULED, start)
    assert audited("visit", baseline.pk, user)
    screen = Visit.objects.get(participant=participant, code="SCREEN")
    page.goto(f"{base}{reverse('dashboard-visit-complete', args=[screen.pk])}")
    submit(page, "Mark as completed")
    page.get_by_text("Visit SCREEN completed.").wait_for()
    screen.refresh_from_db()
    assert screen.status == Visit.Status.COMPLETED and screen.occurred_at is not None
    assert audited("visit", screen.pk, user)

    # Open the baseline's self-report early, from its link on the participant page; then send the link.
    adm = Administration.objects.get(visit=baseline, instrument_code="LSAS_SR")
    page.goto(f"{base}{own}")
    page.locator("main").get_by_role("link", name="Open early BASELINE LSAS_SR").click()
    page.get_by_label("Reason").fill("the participant travels next week")
    submit(page, "Open now")
    page.get_by_text("LSAS_SR is open.").wait_for()
    adm.refresh_from_db()
    assert adm.opened_early_at is not None and audited("administration", adm.pk, user)

    link_form = page.locator("form.link-send").filter(has_text="How to send the link for BASELINE")
    link_form.get_by_label("By e-mail").check()
    link_form.get_by_role("button", name="Send the questionnaire link").click()
    page.get_by_text(f"The link to BASELINE will be sent to {participant.participant_id} by e-mail.").wait_for()
    sent = Notification.objects.get(participant=participant, channel="email", template="questionnaire_link")
    assert audited("notification", sent.pk, user)
    link_form = page.locator("form.link-send").filter(has_text="How to send the link for BASELINE")
    link_form.get_by_label("Show the link here (QR code)").check()
    link_form.get_by_role("button", name="Send the questionnaire link").click()
    page.get_by_role("img", name="QR code of the questionnaire link").wait_for()
    shown = ParticipantLink.objects.get(visit=baseline)  # the e-mail's link is issued when it is sent
    assert shown.created_by == user and audited("participant_link", shown.pk, user)
    page.screenshot(path=str(SHOTS / "forms-04-link-qr.png"), full_page=True)

    # Withdraw: the participant page's link, the level, the reason and the confirmation.
    page.goto(f"{base}{own}")
    page.locator("main").get_by_role("link", name="Withdraw", exact=True).click()
    page.get_by_label("Stop contact").check()
    page.get_by_label("Reason").fill("moved abroad")
    page.get_by_label("I confirm the withdrawal").check()
    submit(page, "Withdraw")
    page.get_by_text("Participant withdrawn.").wait_for()
    participant.refresh_from_db()
    assert (participant.status, participant.withdrawal_level) == ("withdrawn", "stop_contact")
    assert AuditEvent.objects.filter(actor=user, entity_id=str(participant.pk), reason="moved abroad").exists()


def room_forms(page, base: str, world) -> None:
    """The rooms, as the administrator (configuration is theirs): one created, the spare one retired; and a dosing
    session booked on the calendar."""
    admin = world.users["admin"]
    site = world.sites["PDX"]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/")
    page.get_by_label("Username").fill(admin.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/home/")

    page.goto(f"{base}/calendar/?site={site.site.code}")
    page.get_by_label("Room name").fill("Willow room")
    page.get_by_label("Takes overnight stays").check()
    submit(page, "Create room")
    page.get_by_text("Room Willow room created.").wait_for()
    room = Room.objects.get(site=site.site, name="Willow room")
    assert room.overnight_capable and audited("room", room.pk, admin)

    spare = site.rooms["spare"]
    page.locator(f"#id_retire-{spare.pk}-reason").fill("turned into an office")
    page.locator(f"#id_retire-{spare.pk}-confirm").check()
    submit(page, f"Retire {spare.name}")
    page.get_by_text(f"Room {spare.name} retired.").wait_for()
    spare.refresh_from_db()
    assert spare.retired_at is not None and audited("room", spare.pk, admin)
    page.screenshot(path=str(SHOTS / "forms-06-rooms.png"), full_page=True)

    # Book a dosing session on the calendar: the room and both therapists, inside its window. The world's study is a
    # blinded waitlist design, whose dosing sessions blinded roles are not shown: the administrator books it.
    dose = site.visits["dosing"]
    participant = dose.participant
    zone = zoneinfo.ZoneInfo(site.site.time_zone)
    start = dt.datetime.combine(dose.window_start, dt.time(9, 0), zone)
    # The form offers the dosing visits whose window meets the four weeks shown from: the week the window opens.
    page.goto(f"{base}/calendar/?site={site.site.code}&week={dose.window_start.isoformat()}")
    booking = page.locator("form.booking")
    booking.get_by_label("Dosing visit").select_option(str(dose.pk))
    booking.get_by_label("Room").select_option(label="Zephyr room")
    for name in site.therapists:
        booking.get_by_label(name).check()
    booking.get_by_label("Start (site time)").fill(local_input(start, zone))
    booking.get_by_role("button", name="Book").click()
    page.get_by_text(f"Booked {dose.code} of {participant.participant_id}").wait_for()
    dose.refresh_from_db()
    assert (dose.status, dose.scheduled_start, dose.room.name) == (Visit.Status.SCHEDULED, start, "Zephyr room")
    assert sorted(u.username for u in dose.staff.all()) == sorted(site.therapists)
    assert audited("visit", dose.pk, admin) and participant.participant_id in page.locator("#rooms-by-day").inner_text()
    page.screenshot(path=str(SHOTS / "forms-05-calendar-booked.png"), full_page=True)
