"""The Self-Compassion Scale page in a real Chromium on a phone: only the end points carry words, the other options
their number, and every radio has an accessible name in the browser's accessibility tree (the whole-page axe-core run
is tests/browser/test_accessibility.py)."""

from __future__ import annotations

import pytest

from assessments import services
from assessments.models import Administration, Response
from scheduling.models import Visit
from tests.browser.test_participant_flow import SHOTS

pytestmark = pytest.mark.integration


@pytest.mark.django_db(transaction=True)
def test_scs_options_are_named_by_their_label_or_number(
    server_sessions_released, live_server, chromium, make_participant, alice
):
    from scheduling.services import schedule_generate

    SHOTS.mkdir(parents=True, exist_ok=True)
    participant = make_participant("randomized")
    if not Visit.objects.filter(participant=participant).exists():
        schedule_generate(participant=participant, by=None)
    baseline = Visit.objects.get(participant=participant, code="BASELINE")
    for adm in Administration.objects.filter(visit=baseline, respondent="self"):
        services.administration_open_early(administration=adm, by=alice, reason="participant travels")
    _, token = services.link_issue(visit=baseline, by=alice)

    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="en-US"
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(f"{live_server.url}/l/{token}/")
        page.goto(f"{live_server.url}/l/q/2/")
        first = page.get_by_role("group", name="1. EN test wording item SCS_01 (required)", exact=True)
        radios = first.get_by_role("radio")
        assert radios.count() == 5
        for value, name in [(1, "EN test label 1"), (2, "2"), (3, "3"), (4, "4"), (5, "EN test label 5")]:
            radio = first.get_by_role("radio", name=name, exact=True)
            assert radio.count() == 1 and radio.get_attribute("value") == str(value)
        assert page.get_by_role("radio", name="Often").count() == 0
        assert page.get_by_role("radio", name="3", exact=True).count() == 7  # one per item of the first screen
        page.screenshot(path=str(SHOTS / "scs-options.png"), full_page=True)
    finally:
        context.close()
    assert not Response.objects.exists()
