from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient

from participants import services
from participants.models import Participant
from tests.factories import build_study, staff
from trialsite.roles import Role

# Property tests judge the code, not the machine: on a busy machine drawing examples can be slow, and the
# "too slow" health check would fail a test whose property holds. No deadline for the same reason.
settings.register_profile("trialsite", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("trialsite")


@pytest.fixture(scope="session", autouse=True)
def _cache_of_this_worker(worker_id):
    """Each parallel test process gets a Redis database of its own for the cache. Tests clear the cache to reset the
    wrong-token counters; one process clearing must never reset another's counters halfway through a test.
    (Broker tests use databases 11-15, one each; the cache takes 1-10.)"""
    from django.conf import settings
    from django.test.utils import override_settings

    location = settings.CACHES["default"].get("LOCATION")
    if not location or not str(location).startswith("redis://") or worker_id == "master":
        yield
        return
    number = 1 + min(int(worker_id.removeprefix("gw")), 9)
    base = str(location).rsplit("/", 1)[0] if str(location).count("/") > 2 else str(location)
    override = override_settings(
        CACHES={**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": f"{base}/{number}"}}
    )
    override.enable()
    yield
    override.disable()


@pytest.fixture(scope="session", autouse=True)
def _flush_passes_the_audit_truncate_trigger():
    """Transactional tests end with Django's flush, a TRUNCATE of every table, which the audit table's trigger refuses
    (migration audit 0003). The test database's superuser switches that one trigger off for the flush only."""
    from django.db import transaction
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        if not any("audit_auditevent" in sql for sql in sql_list):
            return original(self, sql_list)
        with transaction.atomic(using=self.connection.alias):
            with self.connection.cursor() as cursor:
                cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_no_truncate")
            original(self, sql_list)
            with self.connection.cursor() as cursor:
                cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_no_truncate")

    DatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    DatabaseOperations.execute_sql_flush = original


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
def _text_packs(request):
    """Every database test starts with test text packs loaded (tests/support/text_packs.py: artificial wording) for
    the shipped self-report instruments, in English and Spanish, as a deployment that loaded its validated texts:
    otherwise every questionnaire would be held. ``@pytest.mark.no_text_packs`` starts without them."""
    marker = request.node.get_closest_marker("django_db")
    uses_db = marker is not None or "db" in request.fixturenames or "transactional_db" in request.fixturenames
    if not uses_db or request.node.get_closest_marker("no_text_packs"):
        yield
        return
    transactional = "transactional_db" in request.fixturenames or (
        marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    from tests.support.text_packs import install_default_packs

    install_default_packs()
    yield


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Real hashing costs ~0.3 s a user by design; tests create dozens of staff users. Production keeps PBKDF2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _audit_checkpoints_of_this_test(settings, tmp_path):
    # Each test writes and reads its own audit checkpoints, never the demo's under var/.
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "audit-checkpoints"


TRIAL_APPS = ("participants", "scheduling", "assessments", "safety", "notifications", "exports", "audit")


def trial_tables() -> list[str]:
    """Every table of the trial apps, many-to-many tables included."""
    from django.apps import apps

    return sorted(
        {
            model._meta.db_table
            for label in TRIAL_APPS
            for model in apps.get_app_config(label).get_models(include_auto_created=True)
        }
    )


def table_state() -> dict[str, tuple[int, str]]:
    """Row count and a checksum of every row of every trial table: equal before and after means nothing changed."""
    from django.db import connection

    state = {}
    with connection.cursor() as cursor:
        for table in trial_tables():
            name = connection.ops.quote_name(table)
            cursor.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {name} t"
            )
            state[table] = tuple(cursor.fetchone())
    return state


def changed_tables(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    return sorted(table for table in before if before[table] != after.get(table))


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
