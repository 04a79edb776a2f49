"""Accessibility: a real Chromium signs in and opens every GET page of the page registry (tests/dashboard/pages.py),
one concrete URL each, as a coordinator and as a blinded rater (the pages differ by role; the rater gets the action
pages' refusal), with the sign-in page first; axe-core (node_modules/axe-core, pinned in package-lock.json) runs on each and finds no serious or critical
violation. A screenshot of every page goes to test-artifacts/screenshots/.

The pages' strict CSP would refuse the injected checker, so this test's browser context alone bypasses CSP."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from tests.dashboard.pages import INVESTIGATORS_ONLY, get_pages
from tests.dashboard.world import PASSWORD, build_world, hidden_from

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "test-artifacts" / "screenshots"
BLOCKING = {"serious", "critical"}

pytestmark = pytest.mark.integration

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary, html: n.html.slice(0, 200)})),
  }));
}"""


def check(page, label: str) -> list[str]:
    """Run axe on the page as it stands; the blocking violations, each written out readably."""
    page.add_script_tag(path=str(AXE))
    page.screenshot(path=str(SHOTS / f"a11y-{label}.png"), full_page=True)
    problems = []
    for v in page.evaluate(RUN_AXE):
        if v["impact"] not in BLOCKING:
            continue
        lines = [f"{label}: [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})"]
        for node in v["nodes"]:
            lines.append(f"    at {node['target']}: {node['html']}\n      {node['summary']}".replace("\n", "\n      "))
        problems.append("\n".join(lines))
    return problems


@pytest.mark.django_db(transaction=True)
def test_every_page_has_no_serious_or_critical_violation(server_sessions_released, live_server, chromium):
    assert AXE.exists(), "axe-core is missing: run `npm ci` (make test does)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    world = build_world()
    site = world.sites["PDX"]
    viewers = {"coordinator": "alice", "rater": "walk-rater"}
    problems: list[str] = []
    visited = 0
    for role, username in viewers.items():
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", bypass_csp=True)
        page = context.new_page()
        page.set_default_timeout(10_000)
        try:
            page.goto(f"{live_server.url}/login/")
            if role == "coordinator":
                problems += check(page, "login")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/home/")
            for name, entry in get_pages().items():
                response = page.goto(f"{live_server.url}{entry.url(world, site)}")
                # A role that may not take an action gets the action page's refusal (a 403 page, checked as well);
                # a rater gets a 404 for a safety record the study hides from raters.
                allowed = {200} | ({403} if role == "rater" or name in INVESTIGATORS_ONLY else set())
                allowed |= {404} if role == "rater" and get_pages()[name].safety else set()
                # A visit the role's blinded schedule does not show is not found (its 404 page is checked as well).
                allowed |= (
                    {404}
                    if hidden_from(get_user_model().objects.get(username=username), entry.url(world, site))
                    else set()
                )
                assert response is not None and response.status in allowed, (role, name)
                problems += check(page, f"{role}-{name}")
                visited += 1
            if role == "coordinator":
                # The home page shows one list at a time: each list is checked open (its table, its actions).
                for url in get_pages()["dashboard-home"].urls(world, site)[1:]:
                    if "-page=" not in url:
                        page.goto(f"{live_server.url}{url}")
                        problems += check(page, f"{role}-home-{url.rsplit('=', 1)[-1]}")
            if role == "rater":
                # The control: an input without a label on the last page is reported, so the check can fail.
                page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<input type=text>')")
                planted = check(page, "control")
                assert len(planted) == 1 and "] label:" in planted[0], planted
                (SHOTS / "a11y-control.png").unlink()
        finally:
            context.close()
    assert visited == 2 * len(get_pages())
    assert not problems, "axe found serious or critical violations:\n" + "\n".join(problems)
