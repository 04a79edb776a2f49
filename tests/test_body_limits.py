"""Request bodies beyond what any request of the API needs answer 400 naming the problem, before a view runs:
JSON nested too deeply (100,000 levels used to exhaust the decoder: a 500) and text too long for any field (a 2 MB
value used to be accepted and copied into the audit trail)."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditEvent
from participants.models import Participant

pytestmark = pytest.mark.django_db


def post_raw(client, path: str, body: str, content_type: str = "application/json"):
    return client.generic("POST", path, body.encode(), content_type=content_type)


def test_json_nested_beyond_the_decoder_is_a_400(api, alice):
    client = api(alice)
    deep = "[" * 100_000 + "]" * 100_000
    r = post_raw(client, "/api/v1/participants/", deep)
    assert r.status_code == 400 and "nests too deeply" in r.json()["detail"]
    body = {"study": "MAP", "site": "PDX", "contact": {"full_name": "A"}}
    nested: dict = body
    for _ in range(40):
        nested["x"] = {}
        nested = nested["x"]
    r = post_raw(client, "/api/v1/participants/", json.dumps(body))
    assert r.status_code == 400 and r.json()["detail"] == "the body nests deeper than 32 levels"
    assert not Participant.objects.exists()


def test_a_text_longer_than_any_field_is_a_400_naming_the_field(api, alice, study, pdx, settings):
    before = AuditEvent.objects.count()
    huge = "x" * 2_000_000
    body = {"study": study.code, "site": pdx.code, "contact": {"full_name": huge, "email": "a@example.org"}}
    r = api(alice).post("/api/v1/participants/", body, format="json")
    assert r.status_code == 400 and r.json() == {"contact": [f"at most {settings.API_MAX_TEXT_LENGTH} characters"]}
    assert not Participant.objects.exists() and AuditEvent.objects.count() == before
    # The same in a form body.
    r = api(alice).post("/api/v1/participants/", {"study": study.code, "site": pdx.code, "note": huge})
    assert r.status_code == 400 and r.json() == {"note": [f"at most {settings.API_MAX_TEXT_LENGTH} characters"]}
    # Within the limit, the body goes on to the view.
    body["contact"]["full_name"] = "Ada Example"
    ok = api(alice).post("/api/v1/participants/", body, format="json")
    assert ok.status_code == 201, ok.content
    assert Participant.objects.filter(participant_id=ok.json()["participant_id"]).exists()
