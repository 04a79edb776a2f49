"""List endpoints cost the same number of queries whatever the number of rows (no query per row)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from assessments import services as assessments
from notifications import services as notifications
from scheduling import services as scheduling
from scheduling.models import Visit
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

HIGH = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}


def grow(make_participant, alice, n: int):
    """n more randomized participants, each with a high-risk C-SSRS (an alert) and a recorded deviation."""
    made = []
    for _ in range(n):
        p = make_participant("randomized")
        screen = Visit.objects.get(participant=p, code="SCREEN")
        with transaction.atomic():
            assessments.response_create_staff(
                participant=p, visit=screen, instrument_code="CSSRS_SCREEN", answers=HIGH, by=alice
            )
            scheduling.deviation_record(
                participant=p, type="procedure", description="vitals taken late", by=alice, visit=screen
            )
        notifications.notifications_reconcile(participant_id=p.pk)  # what the on-commit follow-up does
        made.append(p)
    return made


def queries(client, url: str) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(captured.captured_queries), response


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/safety-alerts/",
        "/api/v1/deviations/?site=PDX",
        "/api/v1/sites/",
        "/api/v1/studies/",
        "/api/v1/instruments/",
        "/api/v1/notifications/",
        "/api/v1/participants/{pid}/history/",
        "/api/v1/participants/{pid}/deviations/",
        "/api/v1/participants/{pid}/visits/",
        "/api/v1/visits/{visit}/administrations/",
    ],
)
def test_list_query_count_does_not_grow_with_rows(path, api, personas, make_participant):
    alice = personas[Role.COORDINATOR]
    client = api(personas[Role.INVESTIGATOR])
    first = grow(make_participant, alice, 2)[0]
    visit = Visit.objects.get(participant=first, code="SCREEN")
    url = path.format(pid=first.participant_id, visit=visit.pk)
    client.get(url)  # warm per-process caches (instrument definitions), which are not per request
    small, _ = queries(client, url)
    grow(make_participant, alice, 8)
    with transaction.atomic():  # more history for the same participant and visit, too
        scheduling.deviation_record(participant=first, type="other", description="note", by=alice, visit=visit)
    large, response = queries(client, url)
    assert large == small, f"{url}: {small} queries for few rows, {large} for many"
    body = response.json()
    rows = body["results"] if isinstance(body, dict) and "results" in body else body
    assert rows, f"{url} returned no rows to count"
