"""Site scoping and blinding on every participant route."""

from __future__ import annotations

import pytest

from participants.models import Participant
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

READ_ROUTES = ["", "history/"]
WRITE_ROUTES = {
    "eligibility/": {"answers": {"INC_AGE": True}},
    "consent/": {"version": "1.0", "signed_at": "2026-01-05T10:00:00Z"},
    "enroll/": {},
    "randomize/": {},
    "withdraw/": {"level": "stop_contact", "reason": "x", "date": "2026-01-01"},
}


def test_other_site_coordinator_gets_404_on_every_participant_route(api, alice, bob, make_participant):
    participant = make_participant("enrolled")  # at PDX
    client = api(bob)  # coordinator at NYC only
    base = f"/api/v1/participants/{participant.participant_id}/"
    for route in READ_ROUTES:
        response = client.get(base + route)
        assert response.status_code == 404, route
        assert participant.participant_id not in response.content.decode()
    response = client.patch(base, {"reason": "x", "contact": {"full_name": "Changed"}}, format="json")
    assert response.status_code == 404
    for route, body in WRITE_ROUTES.items():
        response = client.post(base + route, body, format="json")
        assert response.status_code == 404, route
    listing = client.get("/api/v1/participants/").json()
    assert listing["count"] == 0 and listing["results"] == []
    # And nothing changed.
    after = Participant.objects.get(pk=participant.pk)
    assert after.status == "enrolled" and after.contact.full_name == "Test Person"
    # Creating at a site one does not belong to is refused by name, not silently.
    response = client.post("/api/v1/participants/", {"study": "MAP", "site": "PDX"}, format="json")
    assert response.status_code == 400 and "site" in response.json()
    assert Participant.objects.count() == 1


def all_bodies(client, participant) -> list[str]:
    base = f"/api/v1/participants/{participant.participant_id}/"
    bodies = [
        client.get(base).content.decode(),
        client.get(base + "history/").content.decode(),
        client.get("/api/v1/participants/").content.decode(),
        client.get(f"/api/v1/participants/?site=PDX&status={participant.status}").content.decode(),
    ]
    for route, body in WRITE_ROUTES.items():
        bodies.append(client.post(base + route, body, format="json").content.decode())
    bodies.append(client.patch(base, {"reason": "x", "stratum": "PDX"}, format="json").content.decode())
    return bodies


@pytest.mark.parametrize("role", [Role.RATER, Role.STATISTICIAN])
def test_blinded_roles_never_receive_the_arm(api, personas, make_participant, study, role):
    # Make the study open-label and unblinded too: rater and statistician stay blinded regardless.
    study.blinded = False
    study.unblinded = True
    study.save()
    participants = [make_participant("randomized") for _ in range(4)]
    arms = {p.allocation.arm.code for p in participants}
    assert arms  # the arms in use, e.g. {"mdma", "placebo"}
    client = api(personas[role])
    for participant in participants:
        for body in all_bodies(client, participant):
            for arm in ("mdma", "placebo"):
                assert arm not in body.lower()
            assert '"arm"' not in body


def test_unblinded_roles_see_the_arm(api, personas, make_participant):
    participant = make_participant("randomized")
    arm = participant.allocation.arm.code
    for role in (Role.UNBLINDED_STATISTICIAN, Role.ADMIN):
        body = api(personas[role]).get(f"/api/v1/participants/{participant.participant_id}/").json()
        assert body["arm"] == arm
        history = api(personas[role]).get(f"/api/v1/participants/{participant.participant_id}/history/").json()
        assert any(e["field"] == "arm" and e["new_value"] == arm for e in history)
    # The study is double-blind and not unblinded: the coordinator sees that the participant is allocated, not the arm.
    body = api(personas[Role.COORDINATOR]).get(f"/api/v1/participants/{participant.participant_id}/").json()
    assert body["allocated"] is True and "arm" not in body


def test_contact_details_hidden_from_analysis_roles(api, personas, make_participant):
    participant = make_participant("screening")
    for role in (Role.RATER, Role.STATISTICIAN, Role.UNBLINDED_STATISTICIAN):
        client = api(personas[role])
        body = client.get(f"/api/v1/participants/{participant.participant_id}/").content.decode()
        history = client.get(f"/api/v1/participants/{participant.participant_id}/history/").content.decode()
        assert "person@example.org" not in body + history and "Test Person" not in body + history
    body = api(personas[Role.COORDINATOR]).get(f"/api/v1/participants/{participant.participant_id}/").json()
    assert body["contact"]["email"] == "person@example.org"


def test_read_only_roles_cannot_change_participants(api, personas, make_participant):
    participant = make_participant("consented")
    for role in (Role.RATER, Role.STATISTICIAN, Role.THERAPIST):
        response = api(personas[role]).post(
            f"/api/v1/participants/{participant.participant_id}/enroll/", {}, format="json"
        )
        assert response.status_code == 403
        assert "role" in response.json()["detail"]
    assert Participant.objects.get(pk=participant.pk).status == "consented"


def test_participant_list_uses_constant_queries(api, alice, make_participant, django_assert_max_num_queries):
    for _ in range(3):
        make_participant("randomized")
    client = api(alice)
    with django_assert_max_num_queries(8) as small:
        assert client.get("/api/v1/participants/").json()["count"] == 3
    for _ in range(12):
        make_participant("consented")
    with django_assert_max_num_queries(8) as large:
        assert client.get("/api/v1/participants/").json()["count"] == 15
    assert len(large.captured_queries) == len(small.captured_queries)


def test_filters_and_pagination(api, alice, make_participant):
    make_participant("screening")
    make_participant("consented")
    make_participant("consented")
    client = api(alice)
    body = client.get("/api/v1/participants/?status=consented").json()
    assert body["count"] == 2 and {r["status"] for r in body["results"]} == {"consented"}
    body = client.get("/api/v1/participants/?page_size=1&page=2").json()
    assert body["count"] == 3 and len(body["results"]) == 1 and body["results"][0]["participant_id"] == "MAP-PDX-002"


def test_studies_and_sites_are_scoped(api, alice, study):
    body = api(alice).get("/api/v1/sites/").json()
    assert [s["code"] for s in body["results"]] == ["PDX"]
    assert body["results"][0]["roles"] == ["coordinator"]
    body = api(alice).get("/api/v1/studies/").json()
    assert body["results"][0]["code"] == "MAP" and {a["code"] for a in body["results"][0]["arms"]} == {
        "mdma",
        "placebo",
    }
