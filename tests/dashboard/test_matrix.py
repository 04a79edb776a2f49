"""The record status matrix: every cell state at a moved clock, filters and id search, blinding (arm-only visit
columns and arm names), site scoping, the audited contact search, a query count that does not grow with the study,
and a GET that writes nothing."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from assessments import services as assessment_services
from assessments.definitions import visible_items
from assessments.library import instrument_get
from assessments.models import Administration
from audit.models import AuditEvent
from dashboard.matrix_cells import CellState, cell_state, neutral_visit_columns, visit_columns
from participants import services as participant_services
from scheduling import services as scheduling_services
from scheduling.models import Visit
from scheduling.protocol import load_shipped_protocols
from tests.conftest import advance
from tests.dashboard.conftest import page_text
from tests.factories import build_study
from tests.support import dbstate
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

PDX_TZ = zoneinfo.ZoneInfo("America/Los_Angeles")
EARLY = dt.datetime(2026, 2, 2, 17, 0, tzinfo=dt.UTC)  # Monday 2 February, 09:00 in Portland
T0 = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)  # Monday 2 March, 09:00 in Portland
NOW = dt.datetime(2026, 3, 5, 20, 0, tzinfo=dt.UTC)  # Thursday 5 March, 12:00 in Portland
ARM_WORDS = ("immediate", "delayed")  # the SAM arms' codes and (case aside) labels
ARM_ONLY = ("WAIT_END", "End-of-delay")  # the delayed arm's own visit: its code and name


@pytest.fixture
def sam(study_sites):
    """A blinded study whose arms differ in their visits (samati-v1: the delayed arm has WAIT_END)."""
    study, _sites = build_study(
        code="SAM", arms=("immediate", "delayed"), protocol_code="samati-v1", per_stratum=50, site_codes=("PDX", "NYC")
    )
    return study


def person(study, site, by, to="randomized", *, name="Test Person", email="person@example.org", phone=""):
    with transaction.atomic():
        participant = participant_services.participant_create(
            study=study, site=site, by=by, contact={"full_name": name, "email": email, "phone": phone}
        )
    return advance(participant, to, by=by)


def visit(participant, code: str) -> Visit:
    return Visit.objects.select_related("participant__site").get(participant=participant, code=code)


def complete_answers(code: str) -> dict:
    """Complete answers to an instrument: the first value of every item shown."""
    instrument = instrument_get(code)
    answers = {item.code: item.values[0] for item in instrument.items}
    shown = {item.code for item in visible_items(instrument, answers)}
    return {k: v for k, v in answers.items() if k in shown}


def rate_screening(participant, rater) -> None:
    for code in ("LSAS", "CSSRS_SCREEN"):
        with transaction.atomic():
            assessment_services.response_create_staff(
                participant=participant,
                visit=visit(participant, "SCREEN"),
                instrument_code=code,
                answers=complete_answers(code),
                by=rater,
            )


def complete(participant, code: str, when: dt.datetime, by) -> None:
    with transaction.atomic():
        scheduling_services.visit_complete(visit=visit(participant, code), occurred_at=when, by=by)


@pytest.fixture
def seeded(sam, pdx, alice, personas):
    """Participants of SAM at PDX whose SCREEN and BASELINE cells, at NOW, show every state."""
    rater = personas[Role.RATER]
    with time_machine.travel(EARLY, tick=False):
        late = person(sam, pdx, alice, name="Lena Late", email="lena@example.org", phone="+1 (503) 555-0104")
        overdue = person(sam, pdx, alice, name="Omar Over", email="omar@example.org")
    with time_machine.travel(T0, tick=False):
        done = person(sam, pdx, alice, name="Ana Lopez", email="ana.lopez@example.org", phone="+1 503 555 0101")
        waiting = person(sam, pdx, alice, name="Ben Wait", email="ben@example.org")
        missed = person(sam, pdx, alice, name="Cora Miss", email="cora@example.org")
        screening = person(sam, pdx, alice, to="screening", name="Dan Screen", email="dan@example.org")
    with time_machine.travel(dt.datetime(2026, 3, 3, 18, 0, tzinfo=dt.UTC), tick=False):
        complete(done, "SCREEN", dt.datetime(2026, 3, 3, 10, 0, tzinfo=PDX_TZ), alice)
        rate_screening(done, rater)
        with transaction.atomic():
            scheduling_services.visit_schedule(
                visit=visit(done, "BASELINE"), start=dt.datetime(2026, 3, 17, 10, 0, tzinfo=PDX_TZ), by=alice
            )
        complete(waiting, "SCREEN", dt.datetime(2026, 3, 3, 10, 0, tzinfo=PDX_TZ), alice)  # no rating entered yet
        with transaction.atomic():
            scheduling_services.visit_miss(visit=visit(missed, "SCREEN"), reason="did not come", by=alice)
            scheduling_services.visit_cancel(visit=visit(missed, "BASELINE"), reason="moved away", by=alice)
    with time_machine.travel(dt.datetime(2026, 3, 4, 18, 0, tzinfo=dt.UTC), tick=False):
        complete(late, "SCREEN", dt.datetime(2026, 3, 4, 10, 0, tzinfo=PDX_TZ), alice)  # window closed on 2 March
        rate_screening(late, rater)
    return {
        "done": done,
        "waiting": waiting,
        "missed": missed,
        "late": late,
        "overdue": overdue,
        "screening": screening,
    }


def matrix(client, user, method="get", when=NOW, **params):
    with time_machine.travel(when, tick=False):
        client.force_login(user)
        if method == "post":
            query = params.pop("query", {})
            return client.post("/matrix/?" + "&".join(f"{k}={v}" for k, v in query.items()), params)
        return client.get("/matrix/", params)


def states(response) -> dict[str, dict[str, str]]:
    """participant id -> {visit code: state} as the page's context holds it."""
    return {
        row.participant.participant_id: {cell.column.code: cell.state.value for cell in row.cells}
        for row in response.context["rows"]
    }


def row_ids(response) -> list[str]:
    return [row.participant.participant_id for row in response.context["rows"]]


# --- cells ---------------------------------------------------------------------------------------------------------


def test_cells_show_every_state_of_the_legend(client, seeded, alice):
    response = matrix(client, alice, study="SAM")
    body = page_text(response)
    got = {pid: {code: cells[code] for code in ("SCREEN", "BASELINE")} for pid, cells in states(response).items()}
    ids = {key: p.participant_id for key, p in seeded.items()}
    assert got == {
        ids["done"]: {"SCREEN": "completed", "BASELINE": "scheduled"},
        ids["waiting"]: {"SCREEN": "questionnaires", "BASELINE": "planned"},  # the clinician ratings are still due
        ids["missed"]: {"SCREEN": "missed", "BASELINE": "not-applicable"},  # BASELINE cancelled
        ids["late"]: {"SCREEN": "out-of-window", "BASELINE": "planned"},  # done late; BASELINE re-planned from it
        ids["overdue"]: {"SCREEN": "out-of-window", "BASELINE": "out-of-window"},
        ids["screening"]: {"SCREEN": "not-applicable", "BASELINE": "not-applicable"},  # no schedule yet
    }
    assert {s for cells in states(response).values() for s in cells.values()} == {s.value for s in CellState}
    # Colour, symbol and text: the class, the mark, and a text for screen readers naming the visit and state.
    done = seeded["done"].participant_id
    assert (
        f'<a href="/participants/{done}/#visit-SCREEN"><span aria-hidden="true">✓</span>'
        '<span class="visually-hidden">SCREEN: Completed</span></a>'
    ) in body
    assert 'class="cell cell-questionnaires"' in body
    for label in ("Planned", "Scheduled", "Completed", "Missed", "Out of window", "Questionnaires outstanding",
                  "Cancelled or not applicable"):  # fmt: skip
        assert f"<strong>{label}</strong>" in body
    # A participant with no schedule has no visit to open.
    screening = seeded["screening"].participant_id
    assert f"/participants/{screening}/#visit-" not in body


def test_the_questionnaire_state_follows_the_clock_not_the_stored_status():
    """A self-report whose window has closed is expired, so a completed visit waiting only on it is completed; a
    clinician rating never expires."""
    closes = dt.datetime(2026, 3, 10, 7, 59, tzinfo=dt.UTC)
    done = Visit(status=Visit.Status.COMPLETED, window_start=dt.date(2026, 3, 1), window_end=dt.date(2026, 3, 9))
    self_report = Administration(status="due", respondent="self", closes_at=closes)
    clinician = Administration(status="due", respondent="clinician", closes_at=closes)
    before, after = closes - dt.timedelta(hours=1), closes + dt.timedelta(hours=1)
    assert cell_state(done, [self_report], today=before.date(), now=before) == CellState.QUESTIONNAIRES
    assert cell_state(done, [self_report], today=after.date(), now=after) == CellState.COMPLETED
    assert cell_state(done, [clinician], today=after.date(), now=after) == CellState.QUESTIONNAIRES


def test_columns_follow_the_protocol_order():
    protocol = load_shipped_protocols()["samati-v1"]
    unblinded = [c.code for c in visit_columns(protocol, arm_visible=True)]
    assert unblinded[:4] == ["SCREEN", "BASELINE", "WAIT_END", "PREP1"]
    assert unblinded[-2:] == ["POST", "FU6M"] and len(unblinded) == len(set(unblinded)) == 16
    # A blinded viewer: only the visits every arm has alike (the overview's adherence columns); the matrix shows the
    # schedule as the blinded view does, the timepoints under their neutral codes.
    assert [c.code for c in visit_columns(protocol, arm_visible=False)] == ["SCREEN", "BASELINE"]
    columns, sources = neutral_visit_columns(protocol)
    assert [c.code for c in columns] == ["SCREEN", "BASELINE", "PRIMARY", "FOLLOW_UP"]
    assert sources["PRIMARY"] == {"POST", "WAIT_END"} and sources["FOLLOW_UP"] == {"FU6M"}


# --- filters --------------------------------------------------------------------------------------------------------


def test_filters_and_id_search(client, seeded, alice):
    ids = {key: p.participant_id for key, p in seeded.items()}
    everyone = row_ids(matrix(client, alice, study="SAM"))
    assert everyone == sorted(ids.values())
    assert matrix(client, alice, study="SAM").context["total"] == 6

    assert row_ids(matrix(client, alice, study="SAM", status="screening")) == [ids["screening"]]
    response = matrix(client, alice, study="SAM", q=ids["late"].lower())
    assert row_ids(response) == [ids["late"]]
    assert row_ids(matrix(client, alice, study="SAM", q="NOPE")) == []
    assert "No participant matches." in page_text(matrix(client, alice, study="SAM", q="NOPE"))
    # A visit: its column only, for the participants who have it on their schedule.
    response = matrix(client, alice, study="SAM", visit="BASELINE")
    assert [c.code for c in response.context["columns"]] == ["BASELINE"]
    assert row_ids(response) == sorted(v for k, v in ids.items() if k != "screening")
    assert row_ids(matrix(client, alice, study="SAM", site="PDX", status="randomized")) == sorted(
        v for k, v in ids.items() if k != "screening"
    )


def test_the_first_study_is_the_default_and_a_study_elsewhere_is_not_found(client, sam, study, alice):
    assert matrix(client, alice).context["study"].code == "MAP"
    assert matrix(client, alice, study="SAM").context["study"].code == "SAM"
    assert matrix(client, alice, study="NOPE").status_code == 404


def test_pages_of_fifty_with_the_total(client, sam, pdx, alice, monkeypatch):
    monkeypatch.setattr("dashboard.matrix.PAGE_SIZE", 2)
    with time_machine.travel(T0, tick=False):
        made = sorted(person(sam, pdx, alice, to="screening").participant_id for _ in range(3))
    first = matrix(client, alice, study="SAM")
    assert row_ids(first) == made[:2] and first.context["total"] == 3
    body = page_text(first)
    assert 'href="?study=SAM&amp;page=2" rel="next"' in body and "Page 1 of 2" in body
    assert row_ids(matrix(client, alice, study="SAM", page=2)) == made[2:]


# --- blinding and scoping -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.RATER, Role.STATISTICIAN])
def test_blinded_roles_see_no_arm_and_no_arm_only_visit(client, seeded, personas, role):
    response = matrix(client, personas[role], study="SAM")
    body = page_text(response)
    assert len(response.context["rows"]) == 6
    for word in (*ARM_WORDS, *ARM_ONLY):
        assert word.lower() not in body.lower(), word
    # Nor by asking for the arm-only column: it is not a choice.
    refused = matrix(client, personas[role], study="SAM", visit="WAIT_END")
    assert refused.status_code == 400 and not refused.context["rows"]
    assert "The filters could not be applied" in refused.content.decode()
    # (The page echoes the address asked for in the language switch's "next"; it names no column.)
    assert ">WAIT_END<" not in refused.content.decode() and "End-of-delay" not in refused.content.decode()


def test_unblinded_roles_see_the_arm_and_every_visit(client, seeded, personas):
    response = matrix(client, personas[Role.ADMIN], study="SAM")
    body = page_text(response)
    assert "WAIT_END" in [c.code for c in response.context["columns"]]
    assert ">WAIT_END</abbr>" in body and "End-of-delay" in body
    arms = {row.arm_label for row in response.context["rows"] if row.participant.status == "randomized"}
    assert arms == {"Immediate", "Delayed"}  # the seed allocates both arms among five randomized participants
    assert "Immediate" in body and "Delayed" in body
    # The delayed arm's participants have the visit; the others show it as not applicable.
    wait_end = {pid: cells["WAIT_END"] for pid, cells in states(response).items()}
    delayed = {row.participant.participant_id for row in response.context["rows"] if row.arm_label == "Delayed"}
    assert {pid for pid, state in wait_end.items() if state != "not-applicable"} == delayed


def test_a_coordinator_sees_only_their_own_sites_participants(client, sam, pdx, nyc, alice, bob):
    with time_machine.travel(T0, tick=False):
        here = person(sam, pdx, alice).participant_id
        there = person(sam, nyc, bob).participant_id
    body = page_text(matrix(client, alice, study="SAM"))
    assert here in body and there not in body
    assert row_ids(matrix(client, bob, study="SAM")) == [there]
    # Another site's code is not a choice: an explained, empty answer.
    response = matrix(client, alice, study="SAM", site="NYC")
    assert response.status_code == 400 and response.context["rows"] == []
    assert there not in response.content.decode()
    assert "Select a valid choice" in response.content.decode()
    # Nor does an id search reach it.
    assert row_ids(matrix(client, alice, study="SAM", q=there)) == []


# --- contact search -------------------------------------------------------------------------------------------------


def audit_rows() -> list[tuple[str, str, object, str]]:
    return list(
        AuditEvent.objects.filter(entity_type="contact_search")
        .order_by("id")
        .values_list("actor_username", "field", "new_value", "sensitivity")
    )


def test_contact_search_lists_ids_only_and_is_audited(client, seeded, alice):
    ids = {key: p.participant_id for key, p in seeded.items()}
    response = matrix(client, alice, "post", query={"study": "SAM"}, kind="name", text="lopez")
    body = page_text(response)
    assert row_ids(response) == [ids["done"]]
    assert "1 participant matches the contact search." in body
    # No contact detail on the page, not even the text searched.
    for detail in ("Lopez", "lopez", "ana.lopez@example.org"):
        assert detail not in body, detail
    assert audit_rows() == [
        ("alice", "query_kind", "name", "contact"),
        ("alice", "result_count", 1, "contact"),
    ]
    # A phone number matches on its digits, whatever the punctuation.
    response = matrix(client, alice, "post", query={"study": "SAM"}, kind="phone", text="503-555-0104")
    assert row_ids(response) == [ids["late"]]
    response = matrix(client, alice, "post", query={"study": "SAM"}, kind="email", text="EXAMPLE.ORG")
    assert len(row_ids(response)) == 6
    assert [row[2] for row in audit_rows()] == ["name", 1, "phone", 1, "email", 6]


def test_contact_search_is_refused_without_contact_permission(client, seeded, personas):
    rater = personas[Role.RATER]
    assert "Search by contact details" not in page_text(matrix(client, rater, study="SAM"))
    assert 'name="text"' not in page_text(matrix(client, rater, study="SAM"))
    response = matrix(client, rater, "post", query={"study": "SAM"}, kind="name", text="lopez")
    assert response.status_code == 403
    assert audit_rows() == []


def test_an_empty_contact_search_is_explained_and_not_recorded(client, seeded, alice):
    response = matrix(client, alice, "post", query={"study": "SAM"}, kind="name", text="  ")
    assert response.status_code == 400 and response.context["rows"] == []
    assert "The search could not be run" in response.content.decode()
    assert audit_rows() == []


# --- queries and purity ---------------------------------------------------------------------------------------------


def count_queries(client, user) -> int:
    with time_machine.travel(NOW, tick=False):
        client.force_login(user)
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/matrix/", {"study": "SAM"})
    assert response.status_code == 200
    return len(captured)


def test_the_query_count_does_not_grow_with_the_participants(client, sam, pdx, alice):
    with time_machine.travel(T0, tick=False):
        for _ in range(10):
            person(sam, pdx, alice)
    ten = count_queries(client, alice)
    with time_machine.travel(T0, tick=False):
        for _ in range(30):
            person(sam, pdx, alice)
    forty = count_queries(client, alice)
    response = matrix(client, alice, study="SAM")
    assert response.context["total"] == 40 and len(response.context["rows"]) == 40
    # alice is blinded in SAM: four columns (screening, baseline and the two timepoints), filled for every row.
    assert sum(1 for cells in states(response).values() for s in cells.values() if s != "not-applicable") >= 4 * 40
    assert ten == forty, (ten, forty)


def test_a_get_of_the_matrix_writes_nothing(client, seeded, alice, settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"  # the session row is HTTP state
    names = dbstate.tables()
    with time_machine.travel(NOW, tick=False):
        client.force_login(alice)
        before = dbstate.snapshot(names)
        for params in ({"study": "SAM"}, {"study": "SAM", "visit": "SCREEN"}, {"study": "SAM", "site": "NYC"}):
            client.get("/matrix/", params)
        assert dbstate.differences(before, dbstate.snapshot(names)) == {}


def test_the_page_is_in_spanish_for_a_spanish_speaker(client, seeded, alice):
    with transaction.atomic():
        participant_services.staff_language_set(user=alice, language="es", by=alice)
    body = page_text(matrix(client, alice, study="SAM"))
    assert "Estado de los registros" in body and "Cuestionarios pendientes" in body
    assert re.search(r'visually-hidden">SCREEN: Completada<', body)
