from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from participants import services
from participants.models import Participant
from tests.factories import build_study, staff
from trialsite.roles import Role


@pytest.fixture
def smtp_recorder():
    """A real SMTP server on loopback that keeps every message it accepts."""
    from aiosmtpd.controller import Controller

    from tests.support.smtp import Recorder, free_port

    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    recorder.port = controller.port
    yield recorder
    controller.stop()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Real hashing costs ~0.3 s a user by design; tests create dozens of staff users. Production keeps PBKDF2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def study_sites(db):
    return build_study()


@pytest.fixture
def study(study_sites):
    return study_sites[0]


@pytest.fixture
def pdx(study_sites):
    return study_sites[1]["PDX"]


@pytest.fixture
def nyc(study_sites):
    return study_sites[1]["NYC"]


@pytest.fixture
def alice(pdx):
    """Coordinator at PDX only."""
    return staff("alice", Role.COORDINATOR, pdx)


@pytest.fixture
def bob(nyc):
    """Coordinator at NYC only."""
    return staff("bob", Role.COORDINATOR, nyc)


@pytest.fixture
def personas(pdx):
    """One user per role at PDX."""
    return {role.value: staff(f"{role.value}-pdx", role, pdx) for role in Role}


@pytest.fixture
def api():
    def make(user=None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


def advance(participant: Participant, to: str, *, by) -> Participant:
    """Move a participant along the happy path through the real services."""
    order = ["screening", "eligible", "consented", "enrolled", "randomized"]
    with transaction.atomic():
        if order.index(to) >= 1:
            services.eligibility_record(participant=participant, answers={"INC_AGE": True, "EXC_PREG": False}, by=by)
        if order.index(to) >= 2:
            services.consent_record(
                participant=participant, version="1.0", by=by, signed_at=timezone.now() - dt.timedelta(hours=1)
            )
        if order.index(to) >= 3:
            services.participant_enroll(participant=participant, by=by)
        if order.index(to) >= 4:
            services.participant_randomize(participant=participant, by=by)
    return Participant.objects.get(pk=participant.pk)


@pytest.fixture
def make_participant(alice, study, pdx):
    def make(to: str = "screening", *, site=None, by=None, contact=None):
        with transaction.atomic():
            participant = services.participant_create(
                study=study,
                site=site or pdx,
                by=by or alice,
                contact=contact or {"full_name": "Test Person", "email": "person@example.org"},
            )
        return advance(participant, to, by=by or alice)

    return make
