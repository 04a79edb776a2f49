"""A coordinator's whole journey with one participant, through the staff pages in a real Chromium, with a real Celery
worker delivering the questionnaire link to a real SMTP server on loopback:

sign in → new participant (with an e-mail address) → eligibility (all criteria met) → consent → enroll → randomize →
book the baseline visit at a site-local time → open its self-report questionnaires early → send the link by e-mail.
The worker sends the message; the participant opens the link from the message on a phone, answers every
questionnaire, reviews and submits. The coordinator reloads the participant page, sees the scores (equal to the ones
computed here from the answers given), and completes the visit.

Every page is saved as a screenshot under test-artifacts/screenshots/journey-NN-name.png.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zoneinfo
from pathlib import Path

import pytest

from assessments.models import Administration, Answer, ParticipantLink, Response, Score
from audit.models import AuditEvent
from notifications.models import Notification
from participants.models import Participant
from scheduling.models import ProtocolDeviation, Visit
from tests.support.processes import Worker, broker, broker_url, purged, wait_for_worker_sessions_to_end, wait_until

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
INSTRUMENTS = ROOT / "assessments" / "instruments"
PASSWORD = "correct horse battery staple"  # the factory's
EMAIL = "journey.person@example.org"
OPEN_REASON = "The participant answers at home before the visit."
# Redis database of this test's queues (the cache takes 1-10, the other broker tests 11-14).
BROKER_DB = 15
# Generous: two cores, other tests running beside this one.
SLOW = 60

# Item codes and values only (never wording). Varied answers, so a wrong item key or reversal would show.
PCL5 = {f"PCL5_{i:02d}": (3 * i) % 5 for i in range(1, 21)}
SCS = {f"SCS_{i:02d}": 1 + (2 * i) % 5 for i in range(1, 27)}

pytestmark = pytest.mark.integration


def expected_scores(code: str, answers: dict[str, int]) -> dict[str, float]:
    """The instrument's scale scores computed here from its published scale definitions, independently of the
    scoring module: sums, means, and the mean of scale means with the named scales reversed."""
    definition = json.loads((INSTRUMENTS / f"{code}.json").read_text())
    out: dict[str, float] = {}
    for scale in definition["scales"]:
        method = scale["method"]
        if method == "sum":
            out[scale["code"]] = float(sum(answers[item] for item in scale["items"]))
        elif method == "mean":
            out[scale["code"]] = sum(answers[item] for item in scale["items"]) / len(scale["items"])
        elif method == "mean_of_scale_means":
            low, high = scale["range"]["min"], scale["range"]["max"]
            means = [
                (low + high - out[name]) if name in scale["reversed_scales"] else out[name] for name in scale["scales"]
            ]
            out[scale["code"]] = sum(means) / len(means)
        else:  # pragma: no cover - a method this test does not know
            raise AssertionError(f"unknown scale method {method}")
    return out


def expected_flags(code: str, answers: dict[str, int]) -> dict[str, float]:
    """The instrument's flags (1 raised, 0 not) from their published rules: a cut-off on a scale, or enough items at
    or above a threshold in each cluster."""
    definition = json.loads((INSTRUMENTS / f"{code}.json").read_text())
    scales = expected_scores(code, answers)
    items_of = {scale["code"]: scale.get("items", []) for scale in definition["scales"]}
    out: dict[str, float] = {}
    for flag in definition.get("flags", []):
        rule = flag["rule"]
        if rule["type"] == "cutoff" and set(rule) == {"type", "scale", "gte"}:
            raised = scales[rule["scale"]] >= rule["gte"]
        elif rule["type"] == "cluster_criteria":
            raised = all(
                sum(answers[item] >= rule["threshold"] for item in items_of[cluster]) >= least
                for cluster, least in rule["min_counts"].items()
            )
        else:  # pragma: no cover - a rule this test does not know
            raise AssertionError(f"unknown flag rule {rule}")
        out[flag["code"]] = float(raised)
    return out


def shown(value: float) -> str:
    """A score as the staff page writes it: whole numbers without decimals, others with two."""
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


class Shots:
    def __init__(self) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.n = 0

    def __call__(self, page, name: str) -> None:
        self.n += 1
        page.screenshot(path=str(SHOTS / f"journey-{self.n:02d}-{name}.png"), full_page=True)


def watch(page, problems: list[str]) -> None:
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)


def message(page) -> str:
    return page.locator(".messages").inner_text()


def answer_all(page, answers: dict[str, int]) -> None:
    for code, value in answers.items():
        page.locator(f'input[name="{code}"][value="{value}"]').check()
    # Each choice is saved as it is made; the page counts finished saves (a selector wait: the CSP forbids eval).
    page.locator(f'#instrument-form[data-saved-count="{len(answers)}"]').wait_for(state="attached", timeout=SLOW * 1000)


def answer_screens(page, answers: dict[str, int], shot, name: str) -> None:
    """Answer a questionnaire screen by screen (at most eight questions each), continuing after each one."""
    remaining = dict(answers)
    screen = 0
    while remaining:
        screen += 1
        here = {code: value for code, value in remaining.items() if page.locator(f'input[name="{code}"]').count()}
        assert 0 < len(here) <= 8, here
        answer_all(page, here)
        shot(page, f"{name}-{screen}")
        for code in here:
            del remaining[code]
        before = page.url
        page.locator('button[value="next"]').click()
        page.wait_for_url(lambda url, before=before: url != before)


@pytest.mark.django_db(transaction=True)
def test_a_coordinator_takes_a_participant_from_creation_to_scored_baseline(
    server_sessions_released, live_server, chromium, desk_page, smtp_recorder, monkeypatch, alice, study, pdx
):
    shot = Shots()
    zone = zoneinfo.ZoneInfo(pdx.time_zone)
    # The worker writes the link into the message from SITE_URL: this live server, as a deployment's own address.
    monkeypatch.setenv("SITE_URL", live_server.url)
    url = purged(broker_url(BROKER_DB))
    with broker(url):
        worker = Worker(url, smtp_recorder.port)  # starts while the coordinator works
        try:
            _journey(live_server, chromium, desk_page, smtp_recorder, worker, shot, zone, alice)
        finally:
            worker.stop()
    wait_for_worker_sessions_to_end()


def _journey(live_server, chromium, desk_page, smtp_recorder, worker, shot, zone, alice) -> None:
    base = live_server.url
    page = desk_page
    page.set_default_timeout(SLOW * 1000)
    problems: list[str] = []
    watch(page, problems)

    # --- sign in --------------------------------------------------------------------------------------------------
    page.goto(f"{base}/login/")
    shot(page, "sign-in")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/home/")
    shot(page, "home")

    # --- a new participant ----------------------------------------------------------------------------------------
    page.get_by_role("link", name="New participant").click()
    page.wait_for_url("**/participants/new/")
    page.get_by_label("Name").fill("Journey Person")
    page.get_by_label("E-mail").fill(EMAIL)
    shot(page, "new-participant")
    page.get_by_role("button", name="Create participant").click()
    page.wait_for_url(re.compile(r".*/participants/[A-Z0-9-]+/#summary$"))
    participant = Participant.objects.get()
    pid = participant.participant_id
    assert f"Participant {pid} created." in message(page)
    assert page.get_by_role("heading", name=f"Participant {pid}").is_visible()
    assert EMAIL in page.locator("#summary").inner_text()
    shot(page, "created")

    # --- eligibility: every criterion met --------------------------------------------------------------------------
    page.locator("#eligibility").get_by_role("link", name="Record eligibility").click()
    page.wait_for_url(f"**/participants/{pid}/eligibility/")
    page.get_by_label("Aged 18-65 (INC_AGE)").select_option("yes")
    page.get_by_label("Pregnant (EXC_PREG)").select_option("no")
    shot(page, "eligibility")
    page.get_by_role("button", name="Save answers").click()
    page.wait_for_url(f"**/participants/{pid}/#eligibility")
    assert "Eligibility recorded." in message(page)
    assert "Verdict: eligible" in page.locator("#eligibility").inner_text()
    shot(page, "eligible")

    # --- consent --------------------------------------------------------------------------------------------------
    page.locator("#summary").get_by_role("link", name="Record consent").click()
    page.wait_for_url(f"**/participants/{pid}/consent/")
    shot(page, "consent")
    page.get_by_role("button", name="Record consent").click()
    page.wait_for_url(f"**/participants/{pid}/#summary")
    assert "Consent on version 1.0 recorded." in message(page)
    shot(page, "consented")

    # --- enroll ---------------------------------------------------------------------------------------------------
    page.locator("#summary").get_by_role("link", name="Enroll").click()
    page.wait_for_url(f"**/participants/{pid}/enroll/")
    shot(page, "enroll")
    page.get_by_role("button", name="Enroll").click()
    page.wait_for_url(f"**/participants/{pid}/#summary")
    assert "Participant enrolled." in message(page)
    shot(page, "enrolled")

    # --- randomize (confirmed) ------------------------------------------------------------------------------------
    page.locator("#summary").get_by_role("link", name="Randomize").click()
    page.wait_for_url(f"**/participants/{pid}/randomize/")
    page.get_by_label("I confirm the randomization: an allocation cannot be undone.").check()
    shot(page, "randomize")
    page.get_by_role("button", name="Randomize").click()
    page.wait_for_url(f"**/participants/{pid}/#summary")
    assert "Participant randomized" in message(page)
    assert "Randomized" in page.locator("#summary").inner_text()
    shot(page, "randomized")

    # --- book the baseline visit: its target day, 10:00 at the site -------------------------------------------------
    baseline = Visit.objects.get(participant=participant, code="BASELINE")
    booked_local = dt.datetime.combine(baseline.target_date, dt.time(10, 0))
    page.get_by_role("link", name="Schedule BASELINE", exact=True).click()
    page.wait_for_url(f"**/visits/{baseline.pk}/schedule/")
    page.get_by_label("Start").fill(booked_local.strftime("%Y-%m-%dT%H:%M"))
    shot(page, "schedule-baseline")
    page.get_by_role("button", name="Save booking").click()
    page.wait_for_url(f"**/participants/{pid}/#visit-BASELINE")
    assert "Visit BASELINE scheduled." in message(page)
    booked_text = booked_local.replace(tzinfo=zone).strftime("%Y-%m-%d %H:%M %Z")
    row = page.locator("#visit-BASELINE")
    assert booked_text in row.inner_text() and "Scheduled" in row.inner_text()
    shot(page, "scheduled")
    baseline.refresh_from_db()
    assert baseline.scheduled_start == booked_local.replace(tzinfo=zone)

    # --- open the baseline's self-report questionnaires now (their window opens days before the visit) -------------
    self_reports = list(Administration.objects.filter(visit=baseline, respondent="self").order_by("instrument_code"))
    assert [a.instrument_code for a in self_reports] == ["PCL5", "SCS"]
    for adm in self_reports:
        page.get_by_role("link", name=f"Open early BASELINE {adm.instrument_code}", exact=True).click()
        page.wait_for_url(f"**/participants/{pid}/questionnaires/{adm.pk}/open/")
        page.get_by_label("Reason").fill(OPEN_REASON)
        shot(page, f"open-{adm.instrument_code.lower()}")
        page.get_by_role("button", name="Open now").click()
        page.wait_for_url(f"**/participants/{pid}/#questionnaires")
        assert f"{adm.instrument_code} is open." in message(page)
    shot(page, "questionnaires-open")

    # --- send the link by e-mail; the worker delivers it -----------------------------------------------------------
    worker.wait_ready(SLOW)
    form = page.locator("form.link-send")
    assert form.get_by_label("By e-mail").is_checked()
    form.get_by_role("button", name="Send the questionnaire link BASELINE").click()
    page.wait_for_url(f"**/participants/{pid}/#questionnaires")
    assert f"The link to BASELINE will be sent to {pid} by e-mail." in message(page)
    shot(page, "link-sent")
    wait_until(
        lambda: smtp_recorder.count() >= 1,
        SLOW,
        lambda: f"the message at the SMTP server\n{worker.output()[-3000:]}",
        interval=0.2,
    )
    (mail,) = smtp_recorder.messages
    assert mail.to == [EMAIL]
    links = re.findall(rf"{re.escape(base)}/l/[A-Za-z0-9_-]+/", mail.body)
    assert len(links) == 1, mail.body
    sent = Notification.objects.get(participant=participant, template="questionnaire_link")
    wait_until(lambda: Notification.objects.get(pk=sent.pk).status == "sent", SLOW, "the row marked sent")

    # --- the participant, on a phone, answers every questionnaire ---------------------------------------------------
    phone_context = chromium.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True, locale="en-US"
    )
    try:
        phone = phone_context.new_page()
        phone.set_default_timeout(SLOW * 1000)
        phone_problems: list[str] = []
        watch(phone, phone_problems)
        phone.goto(links[0])
        phone.wait_for_url(f"{base}/l/q/1/")  # the token left the address bar
        assert phone.locator(".progress").inner_text() == "Questionnaire 1 of 2, page 1 of 3"
        answer_screens(phone, PCL5, shot, "phone-pcl5")
        assert phone.url == f"{base}/l/q/2/"
        assert phone.locator(".progress").inner_text() == "Questionnaire 2 of 2, page 1 of 4"
        answer_screens(phone, SCS, shot, "phone-scs")
        assert phone.url == f"{base}/l/review/"
        shot(phone, "phone-review")
        phone.get_by_role("button", name="Send my answers").click()
        phone.wait_for_url(f"{base}/l/done/")
        assert phone.get_by_role("heading", name="Thank you").is_visible()
        shot(phone, "phone-thanks")
        assert phone_problems == []
    finally:
        phone_context.close()

    # --- the coordinator sees the scores and completes the visit ----------------------------------------------------
    assert page.url == f"{base}/participants/{pid}/#questionnaires"
    page.reload()
    expected = {"PCL5": expected_scores("PCL5", PCL5), "SCS": expected_scores("SCS", SCS)}
    flags = {"PCL5": expected_flags("PCL5", PCL5), "SCS": expected_flags("SCS", SCS)}
    assert flags["PCL5"] == {"provisional_ptsd": 1.0, "probable_ptsd_cutoff": 1.0}  # the answers raise both
    rows = page.locator("#questionnaires tbody tr")
    for code, scores in expected.items():
        row = rows.filter(has=page.locator("td:nth-child(1)", has_text=re.compile(r"^BASELINE$"))).filter(
            has=page.locator("td:nth-child(2)", has_text=re.compile(rf"^{code}$"))
        )
        assert "Completed" in row.inner_text()
        shown_scores = dict(
            (item.locator(".code").inner_text(), item.inner_text().split()[-1])
            for item in row.locator("ul.scores li").all()
        )
        expected_shown = {scale: shown(value) for scale, value in scores.items()}
        expected_shown |= {flag: "yes" if raised else "no" for flag, raised in flags[code].items()}
        assert shown_scores == expected_shown
    shot(page, "scores")
    # The trajectory tables beside the charts: the baseline's PCL-5 total and SCS compassionate/uncompassionate means.
    pcl5_table = page.locator("#trajectories table").filter(has_text="Total").first.inner_text()
    assert re.search(rf"BASELINE\s+\S+\s+{shown(expected['PCL5']['total'])}\b", pcl5_table), pcl5_table
    scs_table = page.locator("#trajectories table").filter(has_text="UCS").first.inner_text()
    cs, ucs = shown(expected["SCS"]["cs"]), shown(expected["SCS"]["ucs"])
    assert re.search(rf"BASELINE\s+\S+\s+{re.escape(cs)}\s+{re.escape(ucs)}", scs_table), scs_table

    page.get_by_role("link", name="Complete BASELINE", exact=True).click()
    page.wait_for_url(f"**/visits/{baseline.pk}/complete/")
    shot(page, "complete-baseline")
    page.get_by_role("button", name="Mark as completed").click()
    page.wait_for_url(f"**/participants/{pid}/#visit-BASELINE")
    assert "Visit BASELINE completed." in message(page)
    assert "Completed" in page.locator("#visit-BASELINE").inner_text()
    shot(page, "completed")
    assert problems == []

    # --- what the database holds --------------------------------------------------------------------------------------
    participant.refresh_from_db()
    assert participant.status == "randomized" and participant.contact.email == EMAIL
    baseline.refresh_from_db()
    assert baseline.status == "completed"
    for code, answers in (("PCL5", PCL5), ("SCS", SCS)):
        response = Response.objects.get(visit=baseline, instrument_code=code)
        assert dict(Answer.objects.filter(response=response).values_list("item_code", "value")) == answers
        stored = dict(Score.objects.filter(response=response, kind="scale").values_list("code", "value"))
        assert stored == pytest.approx(expected[code])
        stored = dict(Score.objects.filter(response=response, kind="flag").values_list("code", "value"))
        assert stored == flags[code]
    sent.refresh_from_db()
    assert sent.status == "sent" and sent.channel == "email"
    assert sent.sent_at is not None and sent.last_error == ""
    assert ParticipantLink.objects.filter(visit=baseline).count() == 1  # issued once, by the worker, at send time
    assert set(Administration.objects.filter(visit=baseline, respondent="self").values_list("status", flat=True)) == {
        "completed"
    }
    # Completing the baseline now, a week before its window opens, is recorded as the protocol asks.
    deviation = ProtocolDeviation.objects.get(participant=participant)
    days_early = (baseline.occurred_at.astimezone(zone).date() - baseline.window_start).days  # -7 but at midnight
    assert (deviation.visit_id, deviation.type, deviation.days_outside) == (baseline.pk, "out_of_window", days_early)
    assert days_early < 0

    # Every step left its audit row, in the coordinator's name (the link and the answers: the system's).
    events = AuditEvent.objects.filter(participant_id=pid)
    responses = {r.instrument_code: r for r in Response.objects.filter(visit=baseline)}
    booked_utc = booked_local.replace(tzinfo=zone).astimezone(dt.UTC).isoformat()
    alice_did = {
        "create the participant": dict(entity_type="participant", field="participant_id", new_value=pid),
        "record the e-mail address": dict(entity_type="contact_details", field="email", new_value=EMAIL),
        "answer INC_AGE": dict(entity_type="eligibility_answer", field="INC_AGE", new_value=True),
        "answer EXC_PREG": dict(entity_type="eligibility_answer", field="EXC_PREG", new_value=False),
        "find eligible": dict(entity_type="participant", field="eligibility_verdict", new_value=True),
        "record consent": dict(entity_type="consent_record", field="consent_version", new_value="1.0"),
        "allocate": dict(entity_type="allocation_slot", field="arm"),
        "plan the visits": dict(entity_type="participant_schedule", field="visits"),
        "book the baseline": dict(
            entity_type="visit", entity_id=str(baseline.pk), field="scheduled_start", new_value=booked_utc
        ),
        "request the link": dict(
            entity_type="notification", entity_id=str(sent.pk), field="template", new_value="questionnaire_link"
        ),
        "complete the baseline": dict(
            entity_type="visit",
            entity_id=str(baseline.pk),
            field="status",
            old_value="scheduled",
            new_value="completed",
        ),
        "record the deviation": dict(entity_type="protocol_deviation", entity_id=str(deviation.pk), field="type"),
    }
    for old, new in (("screening", "eligible"), ("eligible", "consented"), ("consented", "enrolled"),
                     ("enrolled", "randomized")):  # fmt: skip
        alice_did[f"{old} to {new}"] = dict(action="transition", field="status", old_value=old, new_value=new)
    for adm in self_reports:
        alice_did[f"open {adm.instrument_code} early"] = dict(
            entity_type="administration", entity_id=str(adm.pk), field="opens_at", reason=OPEN_REASON
        )
    system_did = {
        "issue the link": dict(entity_type="participant_link", field="visit", new_value="BASELINE"),
        **{
            f"store {code}": dict(entity_type="response", entity_id=str(r.pk), field="instrument")
            for code, r in responses.items()
        },
    }
    missing = [step for step, match in alice_did.items() if not events.filter(actor=alice, **match).exists()]
    missing += [step for step, match in system_did.items() if not events.filter(actor=None, **match).exists()]
    assert missing == []
