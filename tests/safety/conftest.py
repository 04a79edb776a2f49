from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction

from participants import services as participant_services
from safety import services
from tests.factories import staff
from trialsite.roles import Role

# Thursday 5 March 2026, 10:00 in Portland (PST, UTC-8).
NOW = dt.datetime(2026, 3, 5, 18, 0, tzinfo=dt.UTC)


@pytest.fixture
def participant(make_participant):
    return make_participant("randomized")


@pytest.fixture
def investigator(pdx):
    user = staff("ivy", Role.INVESTIGATOR, pdx)
    user.email = "ivy@example.org"
    user.save()
    return user


@pytest.fixture
def rater(pdx):
    return staff("rita", Role.RATER, pdx)


@pytest.fixture
def monitor(study):
    with transaction.atomic():
        participant_services.study_update(
            study=study,
            by=None,
            reason="medical monitor appointed",
            medical_monitor_name="Dr Monitor",
            medical_monitor_email="monitor@example.org",
        )
    return "monitor@example.org"


def sae_payload(participant, **extra: Any) -> dict[str, Any]:
    """A serious adverse event as a coordinator enters it, times as the site's clock shows them."""
    return {
        "participant_id": participant.participant_id,
        "verbatim_term": "chest pain and palpitations during session",
        "coded_term_code": "10008479",
        "coded_term_text": "Chest pain",
        "onset_at": "2026-03-05T09:30",
        "severity_grade": 3,
        "seriousness": ["serious_hospitalisation"],
        "relatedness_drug": "possible",
        "relatedness_therapy": "unlikely",
        "expectedness": "unexpected",
        "action_taken": "drug_interrupted",
        "outcome": "recovering",
        "aesi_categories": ["cardiovascular"],
        **extra,
    }


def mild_values(participant, **extra: Any) -> dict[str, Any]:
    """Service arguments of a mild, non-serious event."""
    return {
        "participant": participant,
        "verbatim_term": "headache",
        "onset_at": NOW - dt.timedelta(hours=3),
        "severity_grade": 1,
        "relatedness_drug": "possible",
        "relatedness_therapy": "not_related",
        "expectedness": "expected",
        "action_taken": "dose_not_changed",
        "outcome": "recovered",
        **extra,
    }


def record(by, **values: Any):
    with transaction.atomic():
        return services.adverse_event_record(by=by, **values)


@pytest.fixture
def requested_tasks(monkeypatch):
    """The tasks the safety services ask for on commit, by name (their seam to Celery)."""
    requested: list[tuple[str, list[object]]] = []

    def fake(name, args, priority=None):
        requested.append((name, args))

    monkeypatch.setattr("safety.services._rules.send_task_on_commit", fake)
    monkeypatch.setattr("safety.services.alerting.send_task_on_commit", fake)
    return requested


@pytest.fixture(autouse=True)
def clock():
    """Every safety test runs at NOW (the clock ticks on from there)."""
    import time_machine

    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller
