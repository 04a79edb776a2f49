"""Long questionnaires on a phone (390x844), in a real Chromium against a live server: the LSAS-SR (48 ratings)
answered in screens of at most eight items with each situation's two ratings together, back and forward with the
answers kept, progress counted over the whole link, the stored answers equal to what was clicked; a failed autosave
shown to the participant and retried; axe-core on the new screens."""

from __future__ import annotations

import pytest

from assessments import services
from assessments.models import Administration, Answer, Response, Score
from scheduling.models import Visit
from tests.browser.test_accessibility import AXE, check
from tests.browser.test_participant_flow import SHOTS, wait_for_saves

pytestmark = pytest.mark.integration

PCL5 = {f"PCL5_{i:02d}": 1 for i in range(1, 21)}
SCS = {f"SCS_{i:02d}": 3 for i in range(1, 27)}
# A different value on each rating, so that an answer stored under the wrong item would show.
LSAS_SR = {
    f"LSAS_SR_{n:02d}_{kind}": (n + offset) % 4 for n in range(1, 25) for kind, offset in (("FEAR", 0), ("AVOID", 1))
}


def _link_with_lsas_sr(participant, alice, *, earlier_answers: bool) -> tuple[Visit, str]:
    """The MAPP baseline (PCL-5, SCS) with the LSAS-SR added and everything opened now; optionally the first two
    already answered in an earlier session."""
    from scheduling.services import schedule_generate

    if not Visit.objects.filter(participant=participant).exists():
        schedule_generate(participant=participant, by=None)
    baseline = Visit.objects.get(participant=participant, code="BASELINE")
    services.administration_add(visit=baseline, instrument_code="LSAS_SR", by=alice, reason="sub-study")
    for adm in Administration.objects.filter(visit=baseline, respondent="self"):
        services.administration_open_early(administration=adm, by=alice, reason="participant travels")
    link, token = services.link_issue(visit=baseline, by=alice)
    if earlier_answers:
        services.link_save_answers(link=link, answers_by_instrument={"PCL5": PCL5, "SCS": SCS})
    return baseline, token


def _questions(page) -> list[str]:
    """The item codes of the questions on the screen, in order."""
    return [fs.get_attribute("id").removeprefix("q-") for fs in page.locator("fieldset.question").all()]


@pytest.mark.django_db(transaction=True)
def test_phone_answers_the_lsas_sr_in_screens_of_at_most_eight(
    server_sessions_released, live_server, browser_page, make_participant, alice
):
    SHOTS.mkdir(parents=True, exist_ok=True)
    baseline, token = _link_with_lsas_sr(make_participant("randomized"), alice, earlier_answers=True)
    page = browser_page
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_server.url}/l/{token}/")
    # Resumed at the first unanswered question: the LSAS-SR, third questionnaire of the link.
    assert page.url == f"{live_server.url}/l/q/3/"
    assert page.locator(".progress").inner_text() == "Questionnaire 3 of 3, page 1 of 6"
    assert page.locator("#answered").inner_text() == "46 of 94 answered"  # 20 PCL-5 + 26 SCS of 20 + 26 + 48

    seen: list[str] = []
    for screen in range(1, 7):
        assert page.url == f"{live_server.url}/l/q/3/" + (f"{screen}/" if screen > 1 else "")
        assert page.locator(".progress").inner_text() == f"Questionnaire 3 of 3, page {screen} of 6"
        codes = _questions(page)
        assert 0 < len(codes) <= 8
        assert page.locator("fieldset.question:visible").count() == len(codes)
        # Both ratings of every situation on the screen, next to each other.
        for fear, avoid in zip(codes[::2], codes[1::2], strict=True):
            assert fear.endswith("_FEAR") and avoid == fear.removesuffix("_FEAR") + "_AVOID"
        for code in codes:
            page.locator(f'input[name="{code}"][value="{LSAS_SR[code]}"]').check()
        wait_for_saves(page, len(codes))
        seen += codes
        assert page.locator("#answered").inner_text() == f"{46 + len(seen)} of 94 answered"
        assert page.locator("#answered-bar").get_attribute("max") == "94"
        page.screenshot(path=str(SHOTS / f"lsas-sr-{screen}-of-6.png"), full_page=True)
        saved = Administration.objects.get(visit=baseline, instrument_code="LSAS_SR").draft_answers
        assert saved == {code: LSAS_SR[code] for code in seen}

        if screen == 3:
            # Back to the previous screen and forward again: the answers are still chosen there.
            page.get_by_role("button", name="Back to the previous page").click()
            page.wait_for_url("**/l/q/3/2/")
            for code in _questions(page):
                assert page.locator(f'input[name="{code}"][value="{LSAS_SR[code]}"]').is_checked()
            page.get_by_role("button", name="Save and continue").click()
            page.wait_for_url("**/l/q/3/3/")
            for code in codes:
                assert page.locator(f'input[name="{code}"][value="{LSAS_SR[code]}"]').is_checked()

        page.get_by_role("button", name="Save and review" if screen == 6 else "Save and continue").click()
    assert seen == list(LSAS_SR)  # every item once, in the instrument's order

    page.wait_for_url("**/l/review/")
    page.screenshot(path=str(SHOTS / "lsas-sr-review.png"), full_page=True)
    assert not Response.objects.exists()
    page.get_by_role("button", name="Send my answers").click()
    page.wait_for_url("**/l/done/")
    assert page.get_by_role("heading", name="Thank you").is_visible()

    response = Response.objects.get(visit=baseline, instrument_code="LSAS_SR")
    assert dict(Answer.objects.filter(response=response).values_list("item_code", "value")) == LSAS_SR
    assert Score.objects.get(response=response, code="total").value == float(sum(LSAS_SR.values()))
    assert Response.objects.filter(visit=baseline).count() == 3
    assert problems == []


@pytest.mark.django_db(transaction=True)
def test_a_failed_autosave_is_shown_kept_and_retried(
    server_sessions_released, live_server, browser_page, make_participant, alice
):
    SHOTS.mkdir(parents=True, exist_ok=True)
    baseline, token = _link_with_lsas_sr(make_participant("randomized"), alice, earlier_answers=True)
    page = browser_page
    page.goto(f"{live_server.url}/l/{token}/")
    assert page.url == f"{live_server.url}/l/q/3/"
    error = page.locator("#save-error")
    retry = page.get_by_role("button", name="Try saving again")
    assert error.inner_text() == "" and not retry.is_visible()

    def draft():
        return Administration.objects.get(visit=baseline, instrument_code="LSAS_SR").draft_answers

    # Offline: the request never reaches the server.
    page.route("**/autosave/", lambda route: route.abort("internetdisconnected"))
    page.locator('input[name="LSAS_SR_01_FEAR"][value="2"]').check()
    page.locator('#instrument-form[data-failed-count="1"]').wait_for(state="attached")
    assert error.is_visible() and error.get_attribute("role") == "alert"
    assert "could not be saved" in error.inner_text()
    assert retry.is_visible()
    assert page.locator('input[name="LSAS_SR_01_FEAR"][value="2"]').is_checked()  # the answer is kept
    page.screenshot(path=str(SHOTS / "lsas-sr-autosave-offline.png"), full_page=True)
    assert draft() == {}

    # A server error: still shown.
    page.unroute("**/autosave/")
    page.route("**/autosave/", lambda route: route.fulfill(status=500, body="{}", content_type="application/json"))
    page.locator('input[name="LSAS_SR_01_AVOID"][value="1"]').check()
    wait_for_saves(page, 1)
    assert error.is_visible() and "could not be saved" in error.inner_text()
    assert draft() == {}

    # Back online: "Try saving again" saves both answers and clears the message.
    page.unroute("**/autosave/")
    retry.click()
    wait_for_saves(page, 2)
    assert error.inner_text() == "" and not retry.is_visible()
    assert page.locator("#save-status").inner_text() == "Answer saved"
    assert draft() == {"LSAS_SR_01_FEAR": 2, "LSAS_SR_01_AVOID": 1}
    page.screenshot(path=str(SHOTS / "lsas-sr-autosave-recovered.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_the_paged_screens_have_no_serious_accessibility_violation(
    server_sessions_released, live_server, chromium, make_participant, alice
):
    # The staff-page run (test_accessibility.py) does not open participant pages; these are checked here on a phone.
    # axe is injected, which the pages' CSP would refuse, so this context alone bypasses CSP.
    assert AXE.exists(), "axe-core is missing: run `npm ci` (make test does)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    baseline, token = _link_with_lsas_sr(make_participant("randomized"), alice, earlier_answers=True)
    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="en-US", bypass_csp=True
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    try:
        page.goto(f"{live_server.url}/l/{token}/")
        page.goto(f"{live_server.url}/l/q/3/2/")
        problems += check(page, "participant-lsas-sr-screen")
        page.route("**/autosave/", lambda route: route.abort())
        page.locator('input[name="LSAS_SR_05_FEAR"][value="1"]').check()
        page.locator('#instrument-form[data-failed-count="1"]').wait_for(state="attached")
        problems += check(page, "participant-lsas-sr-save-failed")
        page.unroute("**/autosave/")
        page.get_by_role("button", name="Save and continue").click()  # screen 2 is not complete: the error summary
        page.wait_for_url("**/l/q/3/2/")
        assert page.locator("#error-summary").is_visible()
        problems += check(page, "participant-lsas-sr-errors")
        page.goto(f"{live_server.url}/l/review/")
        problems += check(page, "participant-review")
    finally:
        context.close()
    assert not problems, "axe found serious or critical violations:\n" + "\n".join(problems)
    assert Administration.objects.get(visit=baseline, instrument_code="LSAS_SR").draft_answers == {"LSAS_SR_05_FEAR": 1}
