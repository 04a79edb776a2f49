"""Whole-page language: every page of the participant flow, for a participant whose language is Spanish, holds no
English string of the catalogue: the page chrome, the packs' titles, time frames and options, the errors, the review,
the "saved" page, the thank-you page after submit, and the closed and unavailable link pages."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from assessments import services
from assessments.models import Administration
from participants.models import ContactDetails
from tests.assessments.conftest import local_noon

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[2] / "assessments" / "templates" / "assessments"
PO = Path(__file__).resolve().parents[2] / "locale" / "es" / "LC_MESSAGES" / "django.po"


def catalogue() -> dict[str, str]:
    """msgid -> msgstr of the Spanish catalogue (single-line entries without context)."""
    text = PO.read_text(encoding="utf-8")
    return dict(re.findall(r'^msgid "(.+)"\nmsgstr "(.*)"$', text, flags=re.MULTILINE))


def english_chrome() -> set[str]:
    """The participant pages' English strings that the catalogue translates differently: none may appear."""
    strings: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        source = path.read_text(encoding="utf-8")
        strings.update(re.findall(r'{% translate "([^"]+)" %}', source))
        for block in re.findall(r"{% blocktranslate[^%]*%}(.*?){% (?:endblocktranslate|plural) %}", source, re.S):
            strings.update(part.strip() for part in re.split(r"{{[^}]*}}", block) if len(part.strip()) > 6)
    spanish = catalogue()
    assert len(strings) > 25
    return {s for s in strings if len(s) > 3 and spanish.get(s, s) != s}


def visible_text(body: str) -> str:
    """The page's text and the strings its script shows (data-* attributes); markup such as ``required`` is not
    text."""
    shown = re.findall(r'data-[a-z-]+="([^"]*)"', body)
    return re.sub(r"<[^>]+>", " ", body) + " ".join(shown)


def assert_spanish(body: str, where: str) -> None:
    assert '<html lang="es">' in body, where
    text = visible_text(body)
    found = sorted(s for s in english_chrome() if s in text)
    assert found == [], (where, found)
    assert "EN test" not in body and "Item 1<" not in body, where


def test_every_page_of_the_flow_is_in_spanish(participant, baseline, alice, in_window):
    ContactDetails.objects.filter(participant=participant).update(language="es")
    _, token = services.link_issue(visit=baseline, by=alice)
    client = Client()
    client.get(f"/l/{token}/")
    first = client.get("/l/q/1/").content.decode()
    assert_spanish(first, "page")
    assert "ES test title PCL5" in first and "ES test time frame PCL5" in first and "ES test label 4" in first
    # Errors: a page sent with questions unanswered.
    errors = client.post("/l/q/1/", {"PCL5_01": "1", "action": "next"})
    assert errors.status_code == 400
    assert_spanish(errors.content.decode(), "errors")
    # Saved for later.
    saved = client.post("/l/q/1/", {"PCL5_02": "1", "action": "later"}).content.decode()
    assert_spanish(saved, "saved")
    # Review with questions missing, then complete and send.
    review = client.get("/l/review/").content.decode()
    assert_spanish(review, "review")
    assert "ES test title SCS" in review
    # Every screen's answers, as the page script saves them (a screen holds eight questions at most).
    client.post("/l/q/1/autosave/", {f"PCL5_{i:02d}": "1" for i in range(1, 21)})
    client.post("/l/q/2/autosave/", {f"SCS_{i:02d}": "3" for i in range(1, 27)})
    assert_spanish(client.get("/l/review/").content.decode(), "complete review")
    assert client.post("/l/review/").status_code == 302
    done = client.get("/l/done/").content.decode()
    assert_spanish(done, "thank-you")
    assert "Gracias" in done
    # The used link, opened again in the same browser: the unavailable page, still in Spanish.
    closed = client.get(f"/l/{token}/", follow=True)
    assert closed.status_code == 404
    assert_spanish(closed.content.decode(), "closed link")
    assert "Este enlace no se puede usar" in closed.content.decode()


def test_not_open_and_unknown_link_pages_are_in_spanish(participant, baseline, alice):
    ContactDetails.objects.filter(participant=participant).update(language="es")
    with time_machine.travel(local_noon(baseline, baseline.window_start, participant.time_zone), tick=False):
        _, token = services.link_issue(visit=baseline, by=alice)
        client = Client()
        client.get(f"/l/{token}/")
        # Nothing of the visit is open yet (as if its window had not begun): the "nothing to answer" page.
        Administration.objects.filter(visit=baseline).update(opens_at=timezone.now() + dt.timedelta(days=1))
        not_open = client.get("/l/").content.decode()
        assert_spanish(not_open, "not open")
        assert "Nada que responder por ahora" in not_open
    # A browser that never opened a link but asks for Spanish gets the unavailable page in Spanish.
    fresh = Client(HTTP_ACCEPT_LANGUAGE="es")
    unknown = fresh.get("/l/not-a-real-token/", follow=True)
    assert unknown.status_code == 404
    assert_spanish(unknown.content.decode(), "unknown link")
