"""The participant page: a randomized participant's record with its visits, questionnaires, scores and trajectories
(each chart an SVG with its table), blinding and contact access as the API decides them, another site's participant a
404, nothing written by a read, and a query count that does not grow with the record."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from assessments import services as assessment_services
from participants.models import Arm
from scheduling import services as scheduling_services
from scheduling.models import Visit
from tests.dashboard.conftest import page_text
from tests.factories import staff
from tests.support import dbstate
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

CREATED = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)  # 09:00 in Portland (PST): enrolled and randomized, day 0
BASELINE_DONE = dt.datetime(2026, 3, 16, 18, 0, tzinfo=dt.UTC)  # 11:00 in Portland (PDT since 8 March): day 14
NOW = dt.datetime(2026, 3, 20, 19, 0, tzinfo=dt.UTC)

# Item codes and values only (never wording).
PCL5_LOW = {f"PCL5_{i:02d}": 1 for i in range(1, 21)}  # total 20
PCL5_HIGH = {f"PCL5_{i:02d}": 2 for i in range(1, 21)}  # total 40
SCS_ALL_3 = {f"SCS_{i:02d}": 3 for i in range(1, 27)}  # CS and UCS 3


def caps5(item_value: int) -> dict[str, int]:
    return {f"CAPS5_{i:02d}": item_value for i in range(1, 21)} | {
        "CAPS5_CRIT_A": 1,
        "CAPS5_DUR": 1,
        "CAPS5_DISTRESS": 1,
        "CAPS5_DEPERS": 0,
        "CAPS5_DEREAL": 0,
    }


def visit(participant, code: str) -> Visit:
    return Visit.objects.get(participant=participant, code=code)


def randomized(make_participant, **kwargs):
    from scheduling.services import schedule_generate

    p = make_participant("randomized", **kwargs)
    if not Visit.objects.filter(participant=p).exists():
        schedule_generate(participant=p, by=None)
    return p


def enter(participant, code: str, instrument: str, answers: dict[str, int], by) -> None:
    with transaction.atomic():
        assessment_services.response_create_staff(
            participant=participant, visit=visit(participant, code), instrument_code=instrument, answers=answers, by=by
        )


@pytest.fixture
def record(make_participant, alice):
    """Randomized on 2 March; SCREEN done that day (CAPS-5 60, PCL-5 20), BASELINE on 16 March (CAPS-5 40, PCL-5 40,
    SCS CS 3 / UCS 3); PREP1 booked."""
    with time_machine.travel(CREATED, tick=False):
        p = randomized(make_participant)
        enter(p, "SCREEN", "CAPS5", caps5(3), alice)
        enter(p, "SCREEN", "PCL5", PCL5_LOW, alice)
        with transaction.atomic():
            scheduling_services.visit_complete(visit=visit(p, "SCREEN"), occurred_at=CREATED, by=alice)
    with time_machine.travel(BASELINE_DONE, tick=False):
        enter(p, "BASELINE", "CAPS5", caps5(2), alice)
        enter(p, "BASELINE", "PCL5", PCL5_HIGH, alice)
        enter(p, "BASELINE", "SCS", SCS_ALL_3, alice)
        with transaction.atomic():
            scheduling_services.visit_complete(visit=visit(p, "BASELINE"), occurred_at=BASELINE_DONE, by=alice)
            prep1 = visit(p, "PREP1")
            scheduling_services.visit_schedule(
                visit=prep1, start=dt.datetime.combine(prep1.target_date, dt.time(17), tzinfo=dt.UTC), by=alice
            )
    return p


def page(client, user, participant_id: str, when=NOW):
    client.force_login(user)
    with time_machine.travel(when, tick=False):
        return client.get(f"/participants/{participant_id}/")


class _Cells(HTMLParser):
    """The text of every row's cells (th and td) of the HTML fed to it."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def block(body: str, element_id: str) -> str:
    """The HTML from the element with ``element_id`` to the end of the first table after it."""
    start = body.index(f'id="{element_id}"')
    return body[start : body.index("</table>", start)]


def table(body: str, element_id: str) -> list[list[str]]:
    parser = _Cells()
    parser.feed(block(body, element_id))
    return parser.rows


def test_the_page_shows_the_record_with_its_charts_and_tables(client, record, alice):
    body = page_text(page(client, alice, record.participant_id))
    assert '<span class="status pstatus-randomized">Randomized</span>' in body
    assert "version 1.0, signed 2026-03-02 08:00 PST" in body  # signed an hour before, in Portland's time
    assert table(body, "eligibility")[1:] == [
        # The order asked: both criteria have order 0, so by code.
        ["Pregnant (EXC_PREG)", "Exclusion", "No", "2026-03-02 09:00 PST", "alice"],
        ["Aged 18-65 (INC_AGE)", "Inclusion", "Yes", "2026-03-02 09:00 PST", "alice"],
    ]

    # The visit timeline: an accessible SVG, and the table beside it with one row per visit, each with its anchor.
    assert re.search(
        r'<svg class="timeline" [^>]*role="img" aria-labelledby="timeline-title" aria-describedby="timeline-desc"', body
    )
    assert '<title id="timeline-title">Visit timeline</title>' in body
    visits = table(body, "visits")
    assert visits[0] == ["Visit", "Target", "Window", "Booked (site time)", "Actual (site time)", "Status"]
    by_code = {re.search(r"\((\w+)\)$", row[0]).group(1): row for row in visits[1:]}
    assert len(by_code) == Visit.objects.filter(participant=record).count()
    screen, baseline = visit(record, "SCREEN"), visit(record, "BASELINE")
    assert by_code["SCREEN"][1:] == [
        "2026-03-02",
        f"{screen.window_start:%Y-%m-%d} – {screen.window_end:%Y-%m-%d}",
        "—",
        "2026-03-02 09:00 PST",
        "Completed",
    ]
    assert by_code["BASELINE"][1] == "2026-03-16" and by_code["BASELINE"][4:] == ["2026-03-16 11:00 PDT", "Completed"]
    assert by_code["PREP1"][3].endswith("10:00 PDT") and by_code["PREP1"][5] == "Scheduled"
    for code in by_code:
        assert f'<tr id="visit-{code}">' in body
    assert body.count('class="tl-row ') == len(by_code)
    assert baseline.status == "completed"

    # Questionnaires with their scores, per visit.
    rows = table(body, "questionnaires")
    done = {(r[0], r[1]): r for r in rows[1:] if r[3] == "Completed"}
    assert done[("SCREEN", "CAPS5")][4:] == [
        "2026-03-02 09:00 PST",
        "total 60 cluster_b 15 cluster_c 6 cluster_d 21 cluster_e 18 ptsd_diagnosis yes dissociative_subtype no",
    ]
    assert done[("BASELINE", "PCL5")][5].startswith("total 40 ")
    assert done[("BASELINE", "SCS")][5].split()[-4:] == ["cs", "3", "ucs", "3"]
    assert len(done) == 5

    # Trajectories: PCL-5, CAPS-5 and SCS have data, LSAS has none; each is an SVG with its table.
    for key, title in (("pcl5", "PCL-5"), ("caps5", "CAPS-5"), ("scs", "SCS")):
        chart = block(body, f"trajectory-{key}")
        assert re.search(r'<svg class="trajectory-chart" [^>]*role="img"', chart)
        assert f'<title id="trajectory-{key}-title">{title} over study days</title>' in chart
    assert 'id="trajectory-lsas"' not in body
    assert table(body, "trajectory-pcl5") == [
        ["Study day", "Visit", "Date", "Total"],
        ["0", "SCREEN", "2026-03-02", "20"],
        ["14", "BASELINE", "2026-03-16", "40"],
    ]
    assert table(body, "trajectory-caps5")[1:] == [
        ["0", "SCREEN", "2026-03-02", "60"],
        ["14", "BASELINE", "2026-03-16", "40"],
    ]
    assert table(body, "trajectory-scs") == [
        ["Study day", "Visit", "Date", "CS", "UCS"],
        ["14", "BASELINE", "2026-03-16", "3", "3"],
    ]
    # Day 0 at the left edge of the plot, day 14 at the right; 20 and 40 on the PCL-5's 0-80 scale (the plot spans
    # y 14 to 206).
    assert '<polyline points="44.0,158.0 406.0,110.0"/>' in block(body, "trajectory-pcl5")

    # The audit history: who, when (site time), field, old and new value, reason; newest first, 50 to a page.
    history = table(body, "history")
    assert history[0] == ["When (site time)", "Who", "What", "Field", "Old value", "New value", "Reason"]
    pages = int(re.search(r"Page 1 of (\d+)", body).group(1))
    assert pages > 1
    for number in range(2, pages + 1):
        with time_machine.travel(NOW, tick=False):
            older = client.get(f"/participants/{record.participant_id}/", {"history-page": number})
        assert f"Page {number} of {pages}" in page_text(older)
        history += table(page_text(older), "history")[1:]
    status_changes = [r for r in history[1:] if r[3] == "status" and r[2].startswith("transition participant")]
    assert [r[4:6] for r in status_changes][:1] == [["enrolled", "randomized"]]  # newest first
    assert status_changes[0][:2] == ["2026-03-02 09:00 PST", "alice"]
    completed = [r for r in history[1:] if r[2].startswith("update visit") and r[3] == "status" and r[5] == "completed"]
    assert len(completed) == 2


def test_the_home_lists_link_to_the_page(client, record, alice):
    client.force_login(alice)
    with time_machine.travel(NOW, tick=False):
        body = "".join(page_text(client.get("/home/", {"list": key})) for key in ("today", "closing", "overdue"))
    assert f'href="/participants/{record.participant_id}/#visit-' in body


ARM_WORDS = ("mdma", "placebo")  # the test study's arm codes; their labels are the same words


@pytest.mark.parametrize("role", [Role.RATER, Role.STATISTICIAN])
def test_a_blinded_role_sees_no_arm_and_an_unblinded_one_does(client, record, pdx, role):
    assert {a.code for a in Arm.objects.all()} | {a.label.lower() for a in Arm.objects.all()} == set(ARM_WORDS)
    blinded = page_text(page(client, staff(f"blind-{role}", role, pdx), record.participant_id)).lower()
    assert record.participant_id.lower() in blinded and "trajectory-pcl5" in blinded  # the page is not empty
    assert [w for w in ARM_WORDS if w in blinded] == []
    shown = page_text(page(client, staff("ada", Role.ADMIN, pdx), record.participant_id)).lower()
    assert [w for w in ARM_WORDS if w in shown] != []
    assert "<dt>arm</dt>" in shown


def test_contact_details_only_for_roles_that_may_see_them(client, record, alice, pdx):
    rater = page_text(page(client, staff("rita", Role.RATER, pdx), record.participant_id))
    assert "Test Person" not in rater and "person@example.org" not in rater
    assert "Contact details" not in rater
    # The contact rows of the history (the oldest, on its last page) keep who and when, without their values.
    with time_machine.travel(NOW, tick=False):
        oldest = page_text(client.get(f"/participants/{record.participant_id}/", {"history-page": 999}))
    assert "(hidden)" in oldest and "Test Person" not in oldest and "person@example.org" not in oldest
    coordinator = page_text(page(client, alice, record.participant_id))
    assert "<dd>Test Person</dd>" in coordinator and "<dd>person@example.org</dd>" in coordinator


def test_another_sites_coordinator_gets_a_404(client, record, bob):
    assert page(client, bob, record.participant_id).status_code == 404
    assert page(client, bob, "MAP-PDX-999").status_code == 404


def test_signed_out_users_go_to_the_sign_in_page(client, record):
    response = client.get(f"/participants/{record.participant_id}/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_page_writes_nothing(client, record, alice, pdx):
    users = [alice, staff("rita", Role.RATER, pdx), staff("ada", Role.ADMIN, pdx)]
    names = dbstate.tables(exclude=frozenset({"django_session"}))
    for user in users:
        for when in (NOW, NOW + dt.timedelta(days=200)):  # inside the windows, and long after they closed
            with time_machine.travel(when, tick=False):
                client.force_login(user)  # signing in writes (last login, an audit row); the page must not
                before = dbstate.snapshot(names)
                assert client.get(f"/participants/{record.participant_id}/").status_code == 200
                assert dbstate.differences(before, dbstate.snapshot(names)) == {}, (user.username, when)


def queries(client, user, participant_id: str) -> int:
    client.force_login(user)
    with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as captured:
        assert client.get(f"/participants/{participant_id}/").status_code == 200
    return len(captured)


def test_the_query_count_does_not_grow_with_the_record(client, record, make_participant, alice, pdx):
    with time_machine.travel(CREATED, tick=False):
        small = randomized(make_participant)
        enter(small, "SCREEN", "CAPS5", caps5(1), alice)
    with time_machine.travel(BASELINE_DONE, tick=False), transaction.atomic():
        for _ in range(4):
            extra = scheduling_services.visit_add_unscheduled(
                participant=record, kind="assessment", duration_minutes=60, by=alice
            )
            assessment_services.response_create_staff(
                participant=record, visit=extra, instrument_code="PCL5", answers=PCL5_HIGH, by=alice
            )
    admin = staff("ada", Role.ADMIN, pdx)
    for user in (alice, admin):
        few, many = queries(client, user, small.participant_id), queries(client, user, record.participant_id)
        assert few == many, f"{few} queries for a participant with 1 response, {many} with 9"


def test_the_page_in_spanish(client, record, alice):
    from participants import services as participant_services

    with transaction.atomic():
        participant_services.staff_language_set(user=alice, language="es", by=alice)
    body = page_text(page(client, alice, record.participant_id))
    assert f"Participante {record.participant_id}" in body
    assert "Trayectorias" in body and "Historial" in body
    assert "Aleatorizado" in body
    assert "PCL-5 por días de estudio" in body
    # Coordinates stay in SVG's number format whatever the language.
    assert not re.search(r'(?:x|y|cx|cy|width)="\d+,\d', body)
