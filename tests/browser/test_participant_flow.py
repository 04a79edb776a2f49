"""A real Chromium on a phone-sized screen answers a visit's three self-report questionnaires through a participant
link served by a live server, screen by screen: part of the first, reload, resume, finish all three, review, submit,
thank-you."""

from __future__ import annotations

from pathlib import Path

import pytest

from assessments import services
from assessments.models import Administration, Answer, Response, Score
from scheduling.models import Visit

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

pytestmark = pytest.mark.integration


def answer(page, code: str, value: int) -> None:
    page.locator(f'input[name="{code}"][value="{value}"]').check()


def answer_screens(page, answers: dict[str, int], last_button: str, shot: str | None = None) -> None:
    """Answer the questions screen by screen (the questions on each screen, at most eight), pressing "Save and
    continue" after each and ``last_button`` after the last."""
    remaining = dict(answers)
    screen = 0
    while remaining:
        screen += 1
        here = [code for code in remaining if page.locator(f'input[name="{code}"]').count()]
        assert 0 < len(here) <= 8, here
        for code in here:
            answer(page, code, remaining.pop(code))
        if shot:
            page.screenshot(path=str(SHOTS / f"{shot}-{screen}.png"), full_page=True)
        before = page.url
        page.get_by_role("button", name="Save and continue" if remaining else last_button).click()
        page.wait_for_url(lambda url, before=before: url != before)


def wait_for_saves(page, count: int) -> None:
    # The page's script counts finished saves; each save posts the whole form, so once all have finished the server
    # holds every answer whatever order they arrived in.
    # (A selector wait, not wait_for_function: the page's CSP forbids evaluating strings, and the test keeps it on.)
    page.locator(f'#instrument-form[data-saved-count="{count}"]').wait_for(state="attached")


@pytest.mark.django_db(transaction=True)
def test_phone_answers_three_questionnaires_with_a_reload(
    server_sessions_released, live_server, browser_page, make_participant, alice
):
    from scheduling.services import schedule_generate

    SHOTS.mkdir(parents=True, exist_ok=True)
    participant = make_participant("randomized")
    if not Visit.objects.filter(participant=participant).exists():
        schedule_generate(participant=participant, by=None)
    baseline = Visit.objects.get(participant=participant, code="BASELINE")
    # The MAPP baseline has two self-report questionnaires (PCL-5, SCS); the investigator adds the SCS short form,
    # and the coordinator opens all three before the window (the link works from now until the window closes).
    services.administration_add(visit=baseline, instrument_code="SCS_SF", by=alice, reason="sub-study")
    for adm in Administration.objects.filter(visit=baseline, respondent="self"):
        services.administration_open_early(administration=adm, by=alice, reason="participant travels")
    _, token = services.link_issue(visit=baseline, by=alice)

    page = browser_page
    page.goto(f"{live_server.url}/l/{token}/")
    assert page.url == f"{live_server.url}/l/q/1/"  # the token left the address bar
    assert page.locator(".progress").inner_text() == "Questionnaire 1 of 3, page 1 of 3"
    assert page.locator("#answered").inner_text() == "0 of 58 answered"
    page.screenshot(path=str(SHOTS / "01-pcl5-start.png"), full_page=True)

    pcl5 = {f"PCL5_{i:02d}": (i % 5) for i in range(1, 21)}  # total 40
    first_part = list(pcl5.items())[:5]  # of the first screen's seven
    for code, value in first_part:
        answer(page, code, value)
    wait_for_saves(page, len(first_part))
    assert Administration.objects.get(visit=baseline, instrument_code="PCL5").draft_answers == dict(first_part)
    assert not Score.objects.exists()

    # Reload, and resume from the server's saved answers (as on another device).
    page.reload()
    for code, value in first_part:
        assert page.locator(f'input[name="{code}"][value="{value}"]').is_checked()
    assert page.locator("#answered").inner_text() == "5 of 58 answered"
    page.screenshot(path=str(SHOTS / "02-pcl5-resumed.png"), full_page=True)

    # Trying to continue with items of this screen missing shows inline errors; nothing is lost.
    page.get_by_role("button", name="Save and continue").click()
    assert page.locator(".error-summary").is_visible()
    assert "Please answer 2 more questions." in page.locator(".error-summary").inner_text()
    page.screenshot(path=str(SHOTS / "03-pcl5-errors.png"), full_page=True)
    for code, value in list(pcl5.items())[5:7]:
        answer(page, code, value)
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url("**/l/q/1/2/")
    answer_screens(page, dict(list(pcl5.items())[7:]), "Save and continue")
    page.wait_for_url("**/l/q/2/")
    assert page.locator(".progress").inner_text() == "Questionnaire 2 of 3, page 1 of 4"
    assert page.locator("#answered").inner_text() == "20 of 58 answered"

    scs = {f"SCS_{i:02d}": 1 + (i % 5) for i in range(1, 27)}
    answer_screens(page, scs, "Save and continue", shot="04-scs")
    page.wait_for_url("**/l/q/3/")
    assert page.locator(".progress").inner_text() == "Questionnaire 3 of 3, page 1 of 2"

    scs_sf = {f"SCS_SF_{i:02d}": 3 for i in range(1, 13)}
    page.keyboard.press("Tab")  # the form is keyboard-reachable
    answer_screens(page, scs_sf, "Save and review", shot="05-scs-sf")
    page.wait_for_url("**/l/review/")
    page.screenshot(path=str(SHOTS / "06-review.png"), full_page=True)
    assert not Response.objects.exists()
    page.get_by_role("button", name="Send my answers").click()
    page.wait_for_url("**/l/done/")
    assert page.get_by_role("heading", name="Thank you").is_visible()
    page.screenshot(path=str(SHOTS / "07-thanks.png"), full_page=True)

    responses = {r.instrument_code: r for r in Response.objects.filter(visit=baseline)}
    assert set(responses) == {"PCL5", "SCS", "SCS_SF"}
    for code, expected in (("PCL5", pcl5), ("SCS", scs), ("SCS_SF", scs_sf)):
        stored = dict(Answer.objects.filter(response=responses[code]).values_list("item_code", "value"))
        assert stored == expected
    assert Score.objects.get(response=responses["PCL5"], code="total").value == 40.0
    assert Score.objects.get(response=responses["SCS_SF"], code="total").value == 3.0
    assert set(Administration.objects.filter(visit=baseline, respondent="self").values_list("status", flat=True)) == {
        "completed"
    }
    # Opening the link again after submitting shows the friendly page.
    page.goto(f"{live_server.url}/l/{token}/")
    assert page.get_by_role("heading", name="This link cannot be used").is_visible()
    assert len(list(SHOTS.glob("*.png"))) >= 7
