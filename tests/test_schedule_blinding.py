"""The schedule does not unblind (issue 13).

In a blinded SAMATI-style study (waitlist: the delayed arm has its own WAIT_END visit and doses about 16 weeks later)
and a blinded MAPP-style study (identical arms), two participants are seeded identically and randomized the same day
into different arms, and live the same days: each has its visits on their target days, through the primary endpoint.
As each blinded role, everything received about the two is equal once the participant ids (and the database ids of
their rows) are taken out: the visit list, each visit, the site's visit list, the history (API and page), the
calendars, the reminders and the participant's page. The unblinded statistician's view of the same two differs, so the
comparison can fail.

After the primary endpoint the SAMATI-style protocol declares that the blind ends for raters and statisticians: they
then see each participant's own schedule (the delayed arm's dosing visits to come), while the other blinded roles still
see the two alike."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import zoneinfo

import pytest
import time_machine
from django.db import transaction
from django.test import Client

from assessments import services as assessments
from notifications.services.planning import notifications_reconcile
from participants import access
from participants import services as participant_services
from participants.models import AllocationSlot, Participant
from scheduling import services as scheduling_services
from scheduling.models import Room, Visit
from tests.conftest import advance
from tests.exports.conftest import SCS
from tests.factories import build_study, staff
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

START = dt.date(2026, 3, 2)
STYLES = {
    "samati": ("SAM", "samati-v2", ("immediate", "delayed"), {"immediate": "POST", "delayed": "WAIT_END"}),
    "mapp": ("MPP", "mapp-v2", ("mdma", "placebo"), {"mdma": "ENDPOINT", "placebo": "ENDPOINT"}),
}
# Blinded in a blinded study: the always-blinded roles and every role but the unblinded ones.
BLINDED = (Role.RATER, Role.STATISTICIAN, Role.COORDINATOR, Role.THERAPIST, Role.INVESTIGATOR)


def _noon(day: dt.date, tz: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), tzinfo=zoneinfo.ZoneInfo(tz))


def _complete(visit: Visit, p: Participant, *, by, scs: bool) -> None:
    """The visit on its target day at noon, with SCS entered at it when asked (the clock stands still, so the two
    participants' records carry the same instants)."""
    with time_machine.travel(_noon(visit.target_date, p.site.time_zone), tick=False):
        with transaction.atomic():
            scheduling_services.visit_complete(visit=visit, occurred_at=_noon(visit.target_date, "UTC"), by=by)
        if scs:
            with transaction.atomic():
                assessments.response_create_staff(participant=p, visit=visit, instrument_code="SCS", answers=SCS, by=by)


def _seed(style: str, site, coordinator, *, through_primary: bool):
    """Four participants seeded identically, randomized the same day; one of each arm is returned. Each has a
    booked session at the primary-endpoint timepoint (the same hour, two rooms); with ``through_primary`` each then
    has every visit through the primary endpoint on its target day, with SCS at the primary endpoint."""
    code, protocol, arms, primary = STYLES[style]
    study, _ = build_study(code=code, arms=arms, protocol_code=protocol, site_codes=(site.code,))
    people = []
    with time_machine.travel(_noon(START, site.time_zone), tick=False):
        for _ in range(4):
            with transaction.atomic():
                p = participant_services.participant_create(
                    study=study, site=site, by=coordinator, contact={"full_name": "Same", "email": "same@example.org"}
                )
            people.append(advance(p, "enrolled", by=coordinator))
    for p in people:
        for visit in Visit.objects.filter(participant=p).order_by("target_date", "id"):
            _complete(visit, p, by=coordinator, scs=visit.code == "BASELINE")
    day = Visit.objects.get(participant=people[0], code="BASELINE").target_date
    with time_machine.travel(_noon(day, site.time_zone) + dt.timedelta(hours=2), tick=False):
        for p in people:
            with transaction.atomic():
                participant_services.participant_randomize(participant=p, by=coordinator)
    arm_of = dict(AllocationSlot.objects.filter(participant__in=people).values_list("participant_id", "arm__code"))
    chosen = [next(p for p in people if arm_of[p.pk] == arm) for arm in arms]
    rooms = [Room.objects.create(site=site, name=f"Room {n}") for n in (1, 2)]
    with time_machine.travel(_noon(day, site.time_zone) + dt.timedelta(hours=3), tick=False):
        for p, room in zip(chosen, rooms, strict=True):
            end = Visit.objects.get(participant=p, code=primary[arm_of[p.pk]])
            with transaction.atomic():
                scheduling_services.visit_schedule(
                    visit=end,
                    start=_noon(end.target_date, site.time_zone),
                    end=None,
                    room=room,
                    staff=[],
                    by=coordinator,
                )
    if through_primary:
        for p in chosen:
            end = Visit.objects.get(participant=p, code=primary[arm_of[p.pk]])
            while True:
                visit = (
                    Visit.objects.filter(
                        participant=p,
                        status__in=(Visit.Status.PLANNED, Visit.Status.SCHEDULED),
                        target_date__lte=end.target_date,
                    )
                    .order_by("target_date", "id")
                    .first()
                )
                if visit is None:
                    break
                _complete(visit, p, by=coordinator, scs=visit.pk == end.pk)
    return study, [Participant.objects.get(pk=p.pk) for p in chosen]


def _plan_reminders(people, now: dt.datetime) -> None:
    """The reminders of both as the periodic re-plan leaves them at ``now``."""
    with time_machine.travel(now, tick=False):
        for p in people:
            notifications_reconcile(participant_id=p.pk)


# Where a text carries a database id, and what it is the id of: a URL's path segment (after the segment naming the
# kind of record) or query value, an iCalendar UID, a reminder's key, a JSON "id" or "visit_id", a history row's
# entity id (after its entity type).
ID = re.compile(
    r"(?P<kind>[a-z_-]+)(?:/|=|-|:|\"?: \"?| <span class=\"code\">)(?P<id>\d+)(?=[/\"&'#?:@<,}-]|$)",
    flags=re.M,
)


def _ids(text: str, p: Participant) -> str:
    """``text`` without the participant's ids: the participant id, the rooms (the two sessions are booked in two
    rooms), and each database id replaced by its rank among the ids of its kind in the order they first appear (two
    records of the same shape read the same, whatever their rows' ids)."""
    text = re.sub(r"Room \d", "Room", text.replace(p.participant_id, "<participant>"))
    seen: dict[tuple[str, str], str] = {}

    def token(m: re.Match[str]) -> str:
        kind = m.group("kind")
        rank = sum(1 for k, _ in seen if k == kind)
        return m.group(0)[: -len(m.group("id"))] + seen.setdefault((kind, m.group("id")), f"<{kind} {rank}>")

    return ID.sub(token, text)


class Received:
    """Everything one user receives about one participant, each as text with the ids taken out."""

    def __init__(self, user, p: Participant, now: dt.datetime):
        self.user, self.p, self.now = user, p, now
        self.client = Client()
        self.client.force_login(user)

    def get(self, url: str, **extra) -> str:
        with time_machine.travel(self.now, tick=False):
            response = self.client.get(url, **extra)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        return response.content.decode()

    def json(self, url: str):
        return json.loads(self.get(url, HTTP_ACCEPT="application/json"))

    def everything(self) -> dict[str, str]:
        """What was received, without the ids."""
        return {k: _ids(v, self.p) for k, v in self.raw().items()}

    def raw(self) -> dict[str, str]:
        p = self.p
        out = {}
        visits = self.json(f"/api/v1/participants/{p.participant_id}/visits/")
        out["visits"] = json.dumps(visits, sort_keys=True)
        out["each visit"] = json.dumps([self.json(f"/api/v1/visits/{v['id']}/") for v in visits], sort_keys=True)
        listed = self.json(f"/api/v1/visits/?participant={p.participant_id}&page_size=200")
        out["site visit list"] = json.dumps(listed["results"], sort_keys=True)
        history = self.json(f"/api/v1/participants/{p.participant_id}/history/")
        out["history"] = "\n".join(
            json.dumps({k: v for k, v in e.items() if k not in ("id", "entity_id", "entity_type")}, sort_keys=True)
            + f' {e["entity_type"]}: "{e["entity_id"]}"'
            for e in history
        )
        out["site calendar"] = "\n".join(_events_of(self.get(f"/api/v1/calendar/sites/{p.site.code}.ics"), p))
        out["my calendar"] = "\n".join(_events_of(self.get("/api/v1/calendar/me.ics"), p))
        if access.managed_site_ids(self.user):  # the outbox is for the roles that manage participants
            rows = self.json(f"/api/v1/notifications/?participant_id={p.participant_id}&page_size=200")["results"]
            out["reminders"] = json.dumps([{k: v for k, v in r.items() if k != "id"} for r in rows], sort_keys=True)
        out["page"] = _page(self.get(f"/participants/{p.participant_id}/"))
        return out


def _events_of(ics: str, p: Participant) -> list[str]:
    """The participant's calendar events, without the stamps of when the feed was made or the event last changed and
    the room (the two sessions are booked in two rooms)."""
    events = re.findall(r"BEGIN:VEVENT\r?\n(.*?)END:VEVENT", ics, flags=re.S)
    out = []
    for event in events:
        if p.participant_id not in event:
            continue
        lines = [
            line
            for line in event.replace("\r\n ", "").splitlines()
            if not line.startswith(("DTSTAMP", "LAST-MODIFIED", "LOCATION"))
        ]
        out.append("\n".join(lines))
    return out


def _page(html: str) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    return re.sub(r"Room \d", "Room", html)


def _differences(a: Received, b: Received) -> dict[str, tuple[str, str]]:
    first, second = a.everything(), b.everything()
    return {k: (first[k], second[k]) for k in first if first[k] != second[k]}


def _explain(differences: dict[str, tuple[str, str]]) -> str:
    """The first lines that differ, per thing received."""
    out = []
    for key, (first, second) in differences.items():
        split = re.compile(r"(?<=[,>])\s*")
        diff = difflib.unified_diff(split.split(first), split.split(second), lineterm="", n=1)
        out.append(f"{key}:\n" + "\n".join(list(diff)[2:40]))
    return "\n\n".join(out)


def _users(site):
    return {
        role: staff(f"{role}-{site.code.lower()}-x", role, site) for role in (*BLINDED, Role.UNBLINDED_STATISTICIAN)
    }


def _book_everyone(users, study, people):
    """Every user is on the staff of both primary-endpoint sessions (so their own calendars list them)."""
    for p in people:
        visit = Visit.objects.get(participant=p, scheduled_start__isnull=False)
        visit.staff.add(*users.values())


@pytest.mark.parametrize("style", ["samati", "mapp"])
def test_blinded_roles_receive_the_same_about_two_participants_of_different_arms(style, pdx, alice):
    study, (a, b) = _seed(style, pdx, alice, through_primary=False)
    users = _users(pdx)
    _book_everyone(users, study, (a, b))
    now = _noon(START + dt.timedelta(days=60), pdx.time_zone)
    _plan_reminders((a, b), now)

    for role in BLINDED:
        differences = _differences(Received(users[role], a, now), Received(users[role], b, now))
        assert differences == {}, f"{role}:\n{_explain(differences)}"

    # What is compared is there: the timepoints, the history, the booked session, the page.
    seen = Received(users[Role.RATER], a, now).raw()
    codes = [v["code"] for v in json.loads(seen["visits"])]
    if style == "samati":
        assert codes == ["SCREEN", "BASELINE", "PRIMARY", "FOLLOW_UP"]
    else:
        assert len(codes) == 20 and codes[-2:] == ["ENDPOINT", "FU"]
    assert "PRIMARY" in seen["my calendar"] or "ENDPOINT" in seen["my calendar"]
    assert '"field": "status"' in seen["history"]
    reminders = json.loads(Received(users[Role.COORDINATOR], a, now).raw()["reminders"])
    assert "visit_reminder" in {r["template"] for r in reminders}

    # The unblinded statistician sees the two as they are: in SAMATI the arms' schedules differ (in MAPP only the
    # arm itself, on the page).
    open_view = _differences(
        Received(users[Role.UNBLINDED_STATISTICIAN], a, now), Received(users[Role.UNBLINDED_STATISTICIAN], b, now)
    )
    assert "page" in open_view
    if style == "samati":
        assert {"visits", "history", "site visit list"} <= set(open_view)


def test_after_the_primary_endpoint_the_blind_ends_for_raters_and_statisticians_as_the_protocol_declares(pdx, alice):
    study, (a, b) = _seed("samati", pdx, alice, through_primary=True)
    users = _users(pdx)
    _book_everyone(users, study, (a, b))
    # The day after the delayed arm's primary endpoint: the immediate arm is treated, the delayed arm about to be.
    end = Visit.objects.get(participant=b, code="WAIT_END").target_date
    now = _noon(end + dt.timedelta(days=1), pdx.time_zone)
    _plan_reminders((a, b), now)

    for role in (Role.COORDINATOR, Role.THERAPIST, Role.INVESTIGATOR):
        differences = _differences(Received(users[role], a, now), Received(users[role], b, now))
        assert differences == {}, f"{role}:\n{_explain(differences)}"

    for role in (Role.RATER, Role.STATISTICIAN):
        first = json.loads(Received(users[role], a, now).raw()["visits"])
        second = json.loads(Received(users[role], b, now).raw()["visits"])
        assert "POST" in [v["code"] for v in first] and "DOSE1" in [v["code"] for v in first]
        assert [v["code"] for v in second][:4] == ["SCREEN", "BASELINE", "WAIT_END", "PREP1"]
        assert next(v for v in second if v["code"] == "DOSE1")["status"] == "planned"
