"""Visit list/detail: scoping by site, blinding, filters, and constant query counts for large lists."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from participants.access import roles_by_site
from participants.models import Participant
from scheduling.models import ProtocolVersion, Visit
from scheduling.services import room_create
from tests.factories import staff
from trialsite.roles import Role

RANDOMIZED = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)
VISIT_FIELDS = {
    "id",
    "participant_id",
    "code",
    "name",
    "kind",
    "target_date",
    "window_start",
    "window_end",
    "status",
    "scheduled_start",
    "scheduled_end",
    "occurred_at",
    "needs_reschedule",
    "dosing_number",
    "room",
    "staff",
    "instruments",
    "optional",
    "protocol_version",
}


@pytest.fixture
def participant(make_participant):
    with time_machine.travel(RANDOMIZED, tick=False):
        return make_participant(to="randomized")


def test_participant_visits_contract(participant, alice, api):
    r = api(alice).get(f"/api/v1/participants/{participant.participant_id}/visits/")

    assert r.status_code == 200
    rows = r.json()
    assert len(rows) == Visit.objects.filter(participant=participant).count() == 19
    assert VISIT_FIELDS <= set(rows[0])
    dose1 = next(v for v in rows if v["code"] == "DOSE1")
    assert dose1["target_date"] == "2026-03-30" and dose1["window_start"] == "2026-03-27"
    assert dose1["window_end"] == "2026-04-06" and dose1["dosing_number"] == 1
    assert dose1["protocol_version"] == "mapp-v1 v1" and dose1["participant_id"] == participant.participant_id


def test_other_sites_visits_are_404(participant, bob, api):
    visit = Visit.objects.filter(participant=participant).first()
    assert api(bob).get(f"/api/v1/visits/{visit.pk}/").status_code == 404
    assert api(bob).get(f"/api/v1/participants/{participant.participant_id}/visits/").status_code == 404
    r = api(bob).post(f"/api/v1/visits/{visit.pk}/cancel/", {"reason": "x"}, format="json")
    assert r.status_code == 404
    assert api(bob).get("/api/v1/visits/").json()["count"] == 0
    visit.refresh_from_db()
    assert visit.status == "planned"


@pytest.mark.parametrize("role", ["rater", "statistician", "therapist", "coordinator", "unblinded_statistician"])
def test_no_visit_response_reveals_the_arm(participant, personas, api, role):
    arm = participant.allocation.arm.code
    client = api(personas[role])
    visit = Visit.objects.get(participant=participant, code="DOSE1")
    bodies = [
        client.get(f"/api/v1/participants/{participant.participant_id}/visits/").content,
        client.get("/api/v1/visits/").content,
        client.get(f"/api/v1/visits/{visit.pk}/").content,
    ]
    for body in bodies:
        text = body.decode()
        assert '"arm"' not in text and arm not in text.replace("mapp", "")
        assert json.loads(body)


def test_list_filters(participant, alice, api):
    client = api(alice)
    r = client.get("/api/v1/visits/", {"site": "PDX", "kind": "dosing", "from": "2026-03-01", "to": "2026-04-30"})
    assert [v["code"] for v in r.json()["results"]] == ["DOSE1", "DOSE2"]
    r = client.get("/api/v1/visits/", {"status": "completed"})
    assert r.json()["count"] == 0
    r = client.get("/api/v1/visits/", {"status": "nonsense"})
    assert r.status_code == 400 and "status" in r.json()


def _bulk_participants(study, site, count: int, start: int) -> None:
    version = ProtocolVersion.objects.get(code="mapp-v1")
    people = Participant.objects.bulk_create(
        Participant(
            participant_id=f"BULK-{start + i:05d}", study=study, site=site, number=start + i, status="randomized"
        )
        for i in range(count)
    )
    Visit.objects.bulk_create(
        Visit(
            participant=p,
            site=site,
            study=study,
            protocol_version=version,
            code=code,
            name=code,
            kind="dosing",
            target_date=dt.date(2026, 4, 1),
            window_start=dt.date(2026, 3, 30),
            window_end=dt.date(2026, 4, 3),
        )
        for p in people
        for code in ("DOSE1", "DOSE2")
    )


def _list_queries(client, **params) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as ctx:
        r = client.get("/api/v1/visits/", {"page_size": 500, **params})
    assert r.status_code == 200
    return len(ctx), len(r.json()["results"])


def test_listing_visits_for_1000_participants_uses_constant_queries(study, pdx, alice, api, django_assert_num_queries):
    carol = staff("carol", Role.THERAPIST, pdx)
    room = room_create(site=pdx, name="Dosing 1", by=None)
    client = api(alice)
    _bulk_participants(study, pdx, 5, start=1000)
    Visit.objects.filter(participant__participant_id="BULK-01000", code="DOSE1").update(room=room)
    Visit.objects.get(participant__participant_id="BULK-01000", code="DOSE1").staff.add(carol)
    small, small_rows = _list_queries(client)
    assert small_rows == 10

    _bulk_participants(study, pdx, 1000, start=2000)
    roles_by_site(alice)  # same per-request caching as the small call
    with django_assert_num_queries(small):
        r = client.get("/api/v1/visits/", {"page_size": 500})
    assert r.json()["count"] == 2010 and len(r.json()["results"]) == 500
    first = r.json()["results"][0]
    assert first["participant_id"].startswith("BULK-") and first["room"] in (None, "Dosing 1")

    with django_assert_num_queries(small):
        r = client.get("/api/v1/visits/", {"page_size": 500, "page": 5})
    assert len(r.json()["results"]) == 10
