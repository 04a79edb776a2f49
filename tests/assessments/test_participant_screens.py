"""The participant pages in screens (assessments.paging through assessments.views), without JavaScript: each screen
asks for its own questions only, back and forward keep the answers, the flow resumes at the screen of the first
unanswered question, progress is text over the whole link, and the new words are in Spanish."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.utils import translation

from assessments import services
from assessments.models import Administration, Response

pytestmark = pytest.mark.django_db

PCL5_SCREENS = [range(1, 8), range(8, 15), range(15, 21)]  # 20 items: 7 + 7 + 6


def pcl5(numbers, value=1):
    return {f"PCL5_{i:02d}": value for i in numbers}


def posted(answers, action="next"):
    return {**{code: str(value) for code, value in answers.items()}, "action": action}


@pytest.fixture
def client(baseline, alice, in_window):
    """A browser holding the link to the MAPP baseline (PCL-5, then SCS)."""
    _, token = services.link_issue(visit=baseline, by=alice)
    c = Client()
    assert c.get(f"/l/{token}/")["Location"] == "/l/"
    return c


def draft(baseline, code="PCL5"):
    return Administration.objects.get(visit=baseline, instrument_code=code).draft_answers


def test_each_screen_asks_only_for_its_own_questions_and_moves_on(client, baseline):
    page = client.get("/l/q/1/").content.decode()
    assert 'name="PCL5_07"' in page and 'name="PCL5_08"' not in page
    # The second screen is complete with the first one still empty: it goes on to the third.
    r = client.post("/l/q/1/2/", posted(pcl5(PCL5_SCREENS[1], 2)))
    assert r.status_code == 302 and r["Location"] == "/l/q/1/3/"
    assert draft(baseline) == pcl5(PCL5_SCREENS[1], 2)
    # An incomplete screen names its own missing questions, none of another screen.
    r = client.post("/l/q/1/3/", posted({"PCL5_15": 0}))
    page = r.content.decode()
    assert r.status_code == 400 and "Please answer 5 more questions." in page
    assert 'href="#q-PCL5_16"' in page and "#q-PCL5_01" not in page
    assert draft(baseline) == {**pcl5(PCL5_SCREENS[1], 2), "PCL5_15": 0}


def test_answers_posted_for_another_screen_are_not_taken(client, baseline):
    r = client.post("/l/q/1/", posted({**pcl5(PCL5_SCREENS[0]), "PCL5_20": 4, "SCS_01": 2}))
    assert r["Location"] == "/l/q/1/2/"
    assert draft(baseline) == pcl5(PCL5_SCREENS[0])
    assert draft(baseline, "SCS") == {}


def test_back_saves_the_screen_and_forward_shows_the_answers_again(client, baseline):
    client.post("/l/q/1/", posted(pcl5(PCL5_SCREENS[0])))
    # Back, with the screen half answered: saved, not refused.
    r = client.post("/l/q/1/2/", posted({"PCL5_08": 3}, action="back"))
    assert r.status_code == 302 and r["Location"] == "/l/q/1/"
    assert draft(baseline) == {**pcl5(PCL5_SCREENS[0]), "PCL5_08": 3}
    page = client.get("/l/q/1/2/").content.decode()
    assert 'name="PCL5_08" value="3" checked' in page
    assert "Back to the previous page" in page
    # The first screen of the next questionnaire goes back to the last screen of this one.
    page = client.get("/l/q/2/").content.decode()
    assert "Back to the previous questionnaire" in page
    assert client.post("/l/q/2/", posted({}, action="back"))["Location"] == "/l/q/1/3/"
    # The very first screen has nowhere to go back to.
    page = client.get("/l/q/1/").content.decode()
    assert 'value="back"' not in page
    r = client.post("/l/q/1/", posted(pcl5(PCL5_SCREENS[0]), action="back"))
    assert r["Location"] == "/l/q/1/2/"  # taken as "continue"


def test_the_link_resumes_and_review_links_to_the_screen_of_the_first_missing_question(client, baseline):
    assert client.get("/l/")["Location"] == "/l/q/1/"
    client.post("/l/q/1/", posted(pcl5(PCL5_SCREENS[0])))
    client.post("/l/q/1/2/", posted(pcl5(PCL5_SCREENS[1])))
    assert client.get("/l/")["Location"] == "/l/q/1/3/"
    scs_answers = {f"SCS_{i:02d}": 3 for i in range(1, 27) if i != 24}
    client.post("/l/q/1/3/", posted(pcl5(PCL5_SCREENS[2])))
    for screen, numbers in ((1, range(1, 8)), (2, range(8, 15)), (3, range(15, 22))):
        url = "/l/q/2/" if screen == 1 else f"/l/q/2/{screen}/"
        client.post(url, posted({c: v for c, v in scs_answers.items() if int(c[4:]) in numbers}))
    client.post("/l/q/2/4/", posted({c: v for c, v in scs_answers.items() if int(c[4:]) >= 22}, "later"))
    assert client.get("/l/")["Location"] == "/l/q/2/4/"  # SCS_24 is on the SCS's fourth screen
    page = client.get("/l/review/").content.decode()
    assert "1 question is not answered yet." in page
    assert '<a href="/l/q/2/4/">' in page and 'href="/l/q/1/"' in page  # PCL-5 complete: its first screen
    r = client.post("/l/review/")
    assert r.status_code == 400 and not Response.objects.exists()
    client.post("/l/q/2/4/", posted({"SCS_24": 3}))
    assert client.post("/l/review/")["Location"] == "/l/done/"
    assert Response.objects.filter(visit=baseline).count() == 2


def test_an_address_outside_the_screens_goes_to_the_first(client, baseline):
    for url in ("/l/q/1/0/", "/l/q/1/4/", "/l/q/1/" + "9" * 30 + "/"):
        assert client.get(url)["Location"] == "/l/q/1/"
    assert client.get("/l/q/1/1/").status_code == 200  # the first screen under its long name too
    assert draft(baseline) == {}


def test_progress_is_text_over_every_questionnaire_of_the_link(client, baseline):
    page = client.get("/l/q/1/").content.decode()
    assert '<p class="progress" id="progress">Questionnaire 1 of 2, page 1 of 3</p>' in page
    assert "<title>Questionnaire 1 of 2, page 1 of 3</title>" in page
    assert ">0 of 46 answered</p>" in page  # 20 PCL-5 + 26 SCS
    assert '<progress id="answered-bar" max="46" value="0" aria-labelledby="answered">' in page
    client.post("/l/q/2/autosave/", {"SCS_01": "2", "SCS_02": "3"})
    client.post("/l/q/1/autosave/", {"PCL5_01": "1", "PCL5_09": "1"})
    page = client.get("/l/q/1/2/").content.decode()
    assert ">4 of 46 answered</p>" in page
    # What lies outside this screen, for the page script to add this screen's answers to as they are chosen.
    assert 'data-answered-elsewhere="3" data-items-elsewhere="39"' in page
    assert 'data-template="{answered} of {total} answered"' in page
    assert 'aria-live="polite" id="save-status"' in page and 'id="save-error" role="alert"' in page


def test_the_new_words_are_in_spanish():
    context = {
        "number": 1,
        "total": 2,
        "screen": 2,
        "screens": 3,
        "answered": 4,
        "total_items": 46,
        "answered_elsewhere": 3,
        "items_elsewhere": 39,
        "back_url": "/l/q/1/",
        "instrument": {"title": "PCL-5"},
        "items": [],
    }
    with translation.override("es"):
        page = render_to_string("assessments/page.html", context)
    assert "Cuestionario 1 de 2, página 2 de 3" in page
    assert ">4 de 46 respondidas</p>" in page and 'data-template="{answered} de {total} respondidas"' in page
    assert "Su última respuesta no se pudo guardar." in page
    assert "Intentar guardar de nuevo" in page and "Volver a la página anterior" in page
    for english in ("46 answered", "could not be saved", "Try saving again", "previous page", "Questionnaire"):
        assert english not in page
