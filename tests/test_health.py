from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_checks_database_and_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_readyz_names_the_unreachable_broker(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["broker"] and "database" not in body["errors"]
    assert body["errors"]["broker"]


def test_api_schema_and_docs_are_served(client, alice):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in (
        "/api/v1/participants/{participant_id}/randomize/",
        "/api/v1/participants/{participant_id}/history/",
        "/api/v1/studies/",
        "/api/v1/sites/",
    ):
        assert path in text
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content
    assert b"cdn" not in docs.content.lower()  # served from this server, so it works under the CSP and offline


def test_security_headers(client):
    response = client.get("/healthz")
    assert response["Referrer-Policy"] == "same-origin"  # no-referrer only on the participant token URL
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
