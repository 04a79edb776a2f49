from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_healthz_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_checks_database_and_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    # Besides readiness, the count of open safety alerts that reached no investigator (tests/assessments/
    # test_alert_reach.py): reported, never failing readiness.
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "broker": "ok",
        "safety_alerts": {"no_investigator_notified": 0, "nobody_notified": 0},
    }


def test_readyz_names_the_unreachable_broker_and_logs_the_error(client, settings, caplog):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    with caplog.at_level("ERROR", logger="trialsite.health"):
        response = client.get("/readyz")
    assert response.status_code == 503
    # Public: the failing part is named, and no internal detail (address, driver message) is in the body.
    assert response.json() == {
        "status": "unavailable",
        "failing": ["broker"],
        "broker": "unavailable",
        "safety_alerts": {"no_investigator_notified": 0, "nobody_notified": 0},
    }
    assert b"127.0.0.1" not in response.content and b"Error" not in response.content
    assert any("broker unavailable" in r.getMessage() and "Error" in r.getMessage() for r in caplog.records)


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


def test_bodies_with_health_data_are_never_stored_by_a_cache(client, alice):
    """API bodies, staff pages and the sign-in page answer Cache-Control: no-store (a shared computer's back button
    or a proxy must not keep them); a view that sets its own policy keeps it; static files are left alone."""
    client.force_login(alice)
    for path in ("/api/v1/participants/", "/home/", "/api/v1/studies/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"], path
    assert "no-store" in client.get("/healthz")["Cache-Control"]  # never_cache's own header, kept as it is
    assert "no-store" in Client().get("/login/")["Cache-Control"]
