"""Reads never write: every GET of the API, and every page of the participant link, leaves every table as it was.

On a seeded study (participants in every state, visits generated and re-planned, a booked session, responses with
scores through a link and by staff entry, a safety alert, planned reminders, an open and a used participant link, a
data freeze), every GET operation of the live OpenAPI schema is called as each role and as a superuser, with its path
parameters filled from the seeded objects, at two moments: inside the baseline window, and months later when windows
have closed (a read that syncs state to the clock would write then). Each request runs in a savepoint that is rolled
back, so each one meets the same data, and each is compared, table by table, on row count and a checksum of the rows.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from assessments import services as assessments
from audit.models import AuditEvent
from exports import services as exports
from notifications import services as notifications
from participants import services as participants
from participants.models import Participant
from safety import services as safety
from scheduling import services as scheduling
from scheduling.models import Visit
from tests.factories import build_study, staff
from tests.support import api_paths, dbstate
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

# Item codes and values only (never wording): a complete PCL-5, SCS and CAPS-5, and a C-SSRS screen that raises an alert.
PCL5 = {f"PCL5_{i:02d}": (i % 5) for i in range(1, 21)}
SCS = {f"SCS_{i:02d}": 1 + (i % 5) for i in range(1, 27)}
CAPS5 = {f"CAPS5_{i:02d}": 2 for i in range(1, 21)} | {
    "CAPS5_CRIT_A": 1,
    "CAPS5_DUR": 1,
    "CAPS5_DISTRESS": 1,
    "CAPS5_DEPERS": 0,
    "CAPS5_DEREAL": 3,
}
CSSRS_HIGH = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}

# The export URLs are a public contract (exports.services lists them); each dataset as CSV, each format once, and the
# codebook. Formats other than CSV share the row sources, so one dataset each is enough to cover their code.
EXPORTS = [
    *(
        {"dataset": name, "fmt": "csv"}
        for name in (
            "participants",
            "visits",
            "responses",
            "scores",
            "deviations",
            "safety_alerts",
            "dosing_sessions",
            "vital_signs",
            "concomitant_medications",
            "codebook",
        )
    ),
    {"dataset": "scores", "fmt": "json"},
    {"dataset": "responses", "fmt": "sav"},
    {"dataset": "visits", "fmt": "dta"},
    {"dataset": "codebook", "fmt": "json"},
]
# Reads whose query string takes another path through the code (the wide layout has SQL of its own).
EXTRA_READS = ["/api/v1/export/scores.csv?layout=wide", "/api/v1/safety-alerts/?open=1"]
# Every table is compared: nothing is a cache here (the cache is Redis; sessions are moved to the cache below).
EXCLUDED_TABLES: frozenset[str] = frozenset()
ROLES = [*(role.value for role in Role), "superuser"]


def local_noon(day: dt.date, tz_name: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), tzinfo=zoneinfo.ZoneInfo(tz_name))


def advance(participant: Participant, to: str, *, by) -> Participant:
    """The happy path through the real services, as far as ``to``."""
    order = ["screening", "eligible", "consented", "enrolled", "randomized"]
    steps = [
        lambda: participants.eligibility_record(
            participant=participant, answers={"INC_AGE": True, "EXC_PREG": False}, by=by
        ),
        lambda: participants.consent_record(
            participant=participant, version="1.0", by=by, signed_at=timezone.now() - dt.timedelta(hours=1)
        ),
        lambda: participants.participant_enroll(participant=participant, by=by),
        lambda: participants.participant_randomize(participant=participant, by=by),
    ]
    with transaction.atomic():
        for step in steps[: order.index(to)]:
            step()
    return Participant.objects.get(pk=participant.pk)


def seed(freeze_dir) -> dict:
    """The study every read meets. Returns the users by role, the records of its objects by noun (for the path
    parameters, with a label each for failure messages), the two moments and the two link tokens."""
    from django.contrib.auth import get_user_model

    from assessments.models import SafetyAlert
    from notifications.models import Notification
    from tests.support.text_packs import install_default_packs

    install_default_packs()  # module-scoped: seeded before the per-test packs of tests/conftest.py
    study, sites = build_study()
    pdx, nyc = sites["PDX"], sites["NYC"]
    superuser = get_user_model().objects.get(username="system-admin")
    personas = {role.value: staff(f"{role.value}-pdx", role, pdx) for role in Role}
    coordinator, rater = personas[Role.COORDINATOR], personas[Role.RATER]
    nyc_coordinator = staff("coordinator-nyc", Role.COORDINATOR, nyc)
    therapists = [personas[Role.THERAPIST], staff("therapist-2-pdx", Role.THERAPIST, pdx)]
    start = (timezone.now() + dt.timedelta(days=1)).replace(hour=18, minute=0, second=0, microsecond=0)

    def make(to: str, *, site=pdx, by=coordinator, contact=None) -> Participant:
        with transaction.atomic():
            created = participants.participant_create(
                study=study,
                site=site,
                by=by,
                contact=contact or {"full_name": "Test Person", "email": "person@example.org"},
            )
        return advance(created, to, by=by)

    with time_machine.travel(start, tick=False):
        states = {to: make(to) for to in ("screening", "eligible", "consented", "enrolled")}
        main = make("randomized", contact={"full_name": "Ada Example", "email": "ada@example.org"})
        fresh = make("randomized")  # nothing is done for it after randomization
        linked = make("randomized", contact={"full_name": "Bo Example", "email": "bo@example.org"})
        withdrawn = make("randomized")
        elsewhere = make("randomized", site=nyc, by=nyc_coordinator)
        for p in (main, fresh, linked, withdrawn, elsewhere):
            assert Visit.objects.filter(participant=p).exists(), "randomization should generate the visits"
        screen = Visit.objects.get(participant=main, code="SCREEN")
        with transaction.atomic():
            cssrs = assessments.response_create_staff(
                participant=main, visit=screen, instrument_code="CSSRS_SCREEN", answers=CSSRS_HIGH, by=coordinator
            )
            scheduling.deviation_record(
                participant=main, type="procedure", description="vitals taken late", by=coordinator, visit=screen
            )
            room = scheduling.room_create(site=pdx, name="Dosing 1", by=superuser)
            unscheduled = scheduling.visit_add_unscheduled(
                participant=main, kind="assessment", duration_minutes=60, by=coordinator
            )

    baseline = Visit.objects.get(participant=main, code="BASELINE")
    opened = max(local_noon(baseline.window_start, main.time_zone), start + dt.timedelta(hours=1))
    with time_machine.travel(opened, tick=False):
        with transaction.atomic():
            link, token = assessments.link_issue(visit=baseline, by=coordinator)
            # Complete drafts, not submitted: the review page has something to show and can be submitted.
            assessments.link_save_answers(link=link, answers_by_instrument={"PCL5": PCL5, "SCS": SCS})
            assessments.response_create_staff(
                participant=main, visit=baseline, instrument_code="CAPS5", answers=CAPS5, by=rater
            )
        with transaction.atomic():
            used, used_token = assessments.link_issue(
                visit=Visit.objects.get(participant=linked, code="BASELINE"), by=coordinator
            )
            assessments.link_save_answers(link=used, answers_by_instrument={"PCL5": PCL5, "SCS": SCS})
            submitted = assessments.link_submit(link=used)
        dose = Visit.objects.get(participant=main, code="DOSE1")
        with transaction.atomic():
            scheduling.visit_schedule(
                visit=dose,
                start=local_noon(dose.target_date, main.time_zone),
                room=room,
                staff=[t.username for t in therapists],
                by=coordinator,
            )
            participants.participant_withdraw(
                participant=withdrawn, level="stop_follow_up", reason="moved away", date=opened.date(), by=coordinator
            )
        with transaction.atomic():
            adverse_event = safety.adverse_event_record(
                participant=main,
                visit=dose,
                verbatim_term="palpitations",
                onset_at=timezone.now() - dt.timedelta(hours=1),
                severity_grade=3,
                relatedness_drug="possible",
                relatedness_therapy="unlikely",
                expectedness="expected",
                action_taken="not_applicable",
                outcome="recovering",
                seriousness=frozenset({"serious_hospitalisation"}),
                by=coordinator,
            )
            safety.adverse_event_follow_up(event=adverse_event, note="discharged", by=coordinator)
        with transaction.atomic():
            dosing_session = safety.dosing_session_open(
                visit=dose,
                by=coordinator,
                started_at=timezone.now() - dt.timedelta(hours=3),
                kit_identifier="KIT-ZQ-4471",
            )
            safety.dosing_doses_record(
                session=dosing_session,
                initial_dose_mg="120",
                initial_dose_at=timezone.now() - dt.timedelta(hours=2, minutes=30),
                by=coordinator,
            )
            vital_sign = safety.vital_sign_record(
                session=dosing_session,
                timepoint_code="PRE",
                measured_at=timezone.now() - dt.timedelta(hours=2),
                systolic_bp=170,
                diastolic_bp=90,
                note="VITALS-ZQ-NOTE",
                by=coordinator,
            )
            medication = safety.medication_record(
                participant=main,
                name="sertraline",
                medication_class="ssri",
                dose_amount=50,
                dose_unit="mg",
                start_date=timezone.localdate() - dt.timedelta(days=60),
                by=coordinator,
            )
            safety.medication_stop(medication=medication, stop_date=timezone.localdate(), by=coordinator)
            medication_override = safety.medication_override_record(
                visit=dose, reason="prescriber confirms the ZQ taper", by=personas[Role.INVESTIGATOR]
            )
            guess = safety.guess_record(
                participant=main, visit=dose, respondent="participant", guess="mdma", confidence=60, by=coordinator
            )
            safety.guess_correct(treatment_guess=guess, reason="GUESS-ZQ mis-keyed", guess="dont_know", by=coordinator)
        for p in (main, linked, withdrawn, elsewhere):
            notifications.notifications_reconcile(participant_id=p.pk)
        with override_settings(FREEZE_DIR=freeze_dir):
            freeze = exports.freeze_create(by=personas[Role.STATISTICIAN], label="interim")
        # Last, SCREEN recorded as done three days after its planned date: BASELINE, anchored on it, moves after its
        # questionnaires and link were set up. Whatever follows from the plan must follow now, not on the next read.
        with transaction.atomic():
            scheduling.visit_complete(visit=screen, occurred_at=start + dt.timedelta(days=3), by=coordinator)

    baseline.refresh_from_db()
    alert = SafetyAlert.objects.get(response=cssrs)
    assert Notification.objects.exists(), "the reconcile should plan reminders"
    assert set(Participant.objects.values_list("status", flat=True)) >= {
        *("screening", "eligible", "consented", "enrolled", "randomized", "withdrawn")
    }
    fresh_screen = Visit.objects.get(participant=fresh, code="SCREEN")
    records = {
        "participant": [
            {"id": main.participant_id, "label": "randomized, answered, re-planned"},
            {"id": fresh.participant_id, "label": "randomized, nothing since"},
            {"id": withdrawn.participant_id, "label": "withdrawn"},
            {"id": states["screening"].participant_id, "label": "screening"},
            {"id": elsewhere.participant_id, "label": "randomized at NYC"},
        ],
        "visit": [
            {"id": str(baseline.pk), "label": "BASELINE: link with drafts, moved by SCREEN"},
            {"id": str(dose.pk), "label": "DOSE1, booked"},
            {"id": str(screen.pk), "label": "SCREEN, completed, C-SSRS alert"},
            {"id": str(fresh_screen.pk), "label": "SCREEN of a participant with nothing since randomization"},
            {"id": str(unscheduled.pk), "label": "unscheduled visit"},
        ],
        "response": [
            {"id": str(cssrs.pk), "label": "staff-entered C-SSRS"},
            *({"id": str(r.pk), "label": f"{r.instrument_code} through a link"} for r in submitted),
        ],
        "alert": [{"id": str(alert.pk)}],
        "adverse_event": [{"id": str(adverse_event.pk), "label": "serious, with a follow-up"}],
        "dosing_session": [{"id": str(dosing_session.pk), "label": "open, one vital sign over a threshold"}],
        "vital_sign": [{"id": str(vital_sign.pk), "label": "PRE, over the SBP threshold"}],
        "concomitant_medication": [{"id": str(medication.pk), "label": "stopped SSRI"}],
        "medication_override": [{"id": str(medication_override.pk), "label": "override of DOSE1"}],
        "treatment_guess": [{"id": str(guess.pk), "label": "participant's guess, corrected"}],
        "notification": [{"id": str(n.pk)} for n in Notification.objects.order_by("id")[:1]],
        "link": [{"token": token, "label": "open link"}, {"token": used_token, "label": "used link"}],
        "study": [{"id": str(study.pk), "code": study.code}],
        "site": [{"id": str(s.pk), "code": s.code} for s in (pdx, nyc)],
        "room": [{"id": str(room.pk), "name": room.name}],
        "arm": [{"id": str(a.pk), "code": a.code} for a in study.arms.order_by("code")],
        "criterion": [{"id": str(c.pk), "code": c.code} for c in study.criteria.order_by("code")],
        "freeze": [{"id": str(freeze.pk)}],
        "instrument": [{"code": "PCL5"}, {"code": "CSSRS_SCREEN"}],
        "export": EXPORTS,
    }
    moments = {
        "inside the baseline window": local_noon(baseline.target_date, main.time_zone),
        "after the windows closed": start + dt.timedelta(days=200),
    }
    assert moments["inside the baseline window"] > opened
    users = {**personas, "superuser": superuser}
    return {"users": users, "records": records, "moments": moments, "token": token, "used_token": used_token}


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """Seeded once for the module, inside a transaction rolled back at its end; each test runs in a savepoint of it
    (pytest-django's own per-test transaction), so no test sees another's writes."""
    freeze_dir = tmp_path_factory.mktemp("freezes")
    # Real password hashing costs ~0.3 s a user by design; the seed creates a dozen. Production keeps PBKDF2.
    hashing = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    with django_db_blocker.unblock(), hashing, transaction.atomic():
        data = seed(freeze_dir)
        data["freeze_dir"] = freeze_dir
        yield data
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _reads_setup(world, settings):
    settings.FREEZE_DIR = world["freeze_dir"]
    # The participant pages keep the link in the session by design (the token leaves the URL). Sessions go to the
    # cache here so that a page's session survives the rollback of the request before it: each page is then measured
    # against the same database. The session row is HTTP state, not trial data.
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    # The used link's token counts as a wrong guess; it must not lock out the requests after it.
    settings.ASSESSMENT_LINK_FAILURE_LIMIT = 10**9
    cache.clear()
    yield
    cache.clear()


def redact(url: str, world) -> str:
    return url.replace(world["token"], "<open-link-token>").replace(world["used_token"], "<used-link-token>")


class Reads:
    """Runs reads in rolled-back savepoints and records what each one changed, against the state before any of them."""

    def __init__(self):
        self.tables = dbstate.tables(EXCLUDED_TABLES)
        self.before = dbstate.snapshot(self.tables)
        self.last_audit = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        self.changes: list[str] = []
        self.statuses: dict[str, list[int]] = {}

    def read(self, client, url: str, *, label: str, operation: str | None = None, expect_audit=None, method="get"):
        with transaction.atomic():
            response = getattr(client, method)(url)
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)  # exports audit when the stream ends: run it to the end
            after = dbstate.snapshot(self.tables)
            written = list(
                AuditEvent.objects.filter(id__gt=self.last_audit)
                .order_by("id")
                .values_list("action", "entity_type", "field", "actor__username")
            )
            transaction.set_rollback(True)
        changed = dbstate.differences(self.before, after)
        if expect_audit is not None and len(written) == 1 and expect_audit(written[0]):
            # A download writes its one audit row by design (export_audit_of says why); nothing else may change.
            changed.pop(AuditEvent._meta.db_table, None)
            written = []
        if response.status_code == 429:
            self.changes.append(f"{label} -> 429: rate limited, so the read never ran")
        if changed or written:
            audit = f"; audit rows written: {written}" if written else ""
            tables = ", ".join(f"{t} ({c})" for t, c in changed.items())
            self.changes.append(f"{label} -> {response.status_code}: changed {tables}{audit}")
        self.statuses.setdefault(operation or url, []).append(response.status_code)
        return response


def export_audit_of(user):
    """The one write a download may make: its own audit row (action export), by the user who downloaded. A regulated
    trial keeps a record of who took which data out (tests/exports/test_access.py requires one row per export, written
    when the stream ends); that row records the read itself and changes no trial data. Any other write still fails."""

    def allowed(row) -> bool:
        action, entity_type, _field, username = row
        return action == AuditEvent.Action.EXPORT and entity_type in ("export", "export_freeze") and username == user

    return allowed


_schema: dict = {}


def schema_gets(client) -> list[str]:
    if not _schema:
        _schema.update(api_paths.load_schema(client))
    return [path for path, _op in api_paths.operations(_schema, "get")]


@pytest.mark.parametrize("role", ROLES)
def test_every_get_in_the_schema_writes_nothing(role, world, api):
    user = world["users"][role]
    client = api(user)
    records = world["records"]
    gets = schema_gets(client)
    assert len(gets) >= 20, gets
    unfilled = {path: api_paths.unresolved(path, records) for path in gets}
    unfilled = {path: names for path, names in unfilled.items() if names}
    assert not unfilled, f"path parameters this test cannot fill (seed the object and name it): {unfilled}"
    # The superuser, who sees everything, meets every seeded object; each role meets the first of each kind (the
    # participant and visit with the most history), which is enough to take its own permission paths.
    limit = 10 if role == "superuser" else 1
    reads = Reads()
    for moment, when in world["moments"].items():
        with time_machine.travel(when, tick=False):
            for path in [*gets, *EXTRA_READS]:
                for values in api_paths.fillings(path, records, limit=limit):
                    url = api_paths.fill(path, values)
                    download = path.startswith("/api/v1/export/") and path != "/api/v1/export/freezes/"
                    reads.read(
                        client,
                        url,
                        label=f"GET {redact(url, world)}{api_paths.describe(path, values, records)} as {role} [{moment}]",
                        operation=path,
                        expect_audit=export_audit_of(user.username) if download else None,
                    )

    assert not reads.changes, f"{len(reads.changes)} reads wrote:\n" + "\n".join(reads.changes)
    if role == "superuser":
        # Every operation met at least one real object.
        missed = {op: codes for op, codes in reads.statuses.items() if not any(200 <= c < 300 for c in codes)}
        assert not missed, f"operations that never answered 2xx as superuser: {missed}"


def test_link_pages_write_nothing(world):
    """The participant's pages under the link: opening the link (HEAD and GET), the start page, each questionnaire
    page, the review page and the thank-you page, at both moments, for the open link and for one already used."""
    reads = Reads()
    for moment, when in world["moments"].items():
        with time_machine.travel(when, tick=False):
            for name, token in (("open link", world["token"]), ("used link", world["used_token"])):
                # Mail scanners and link previews send HEAD as well.
                reads.read(Client(), f"/l/{token}/", label=f"HEAD /l/<token>/ ({name}) [{moment}]", method="head")
                client = Client()
                statuses = []
                for path in (f"/l/{token}/", "/l/", "/l/q/1/", "/l/q/2/", "/l/review/"):
                    label = f"GET {redact(path, world)} ({name}) [{moment}]"
                    statuses.append(reads.read(client, path, label=label).status_code)
                # Reach the thank-you page the real way (a submit, rolled back), then read it.
                with transaction.atomic():
                    client.post("/l/review/")
                    transaction.set_rollback(True)
                statuses.append(reads.read(client, "/l/done/", label=f"GET /l/done/ ({name}) [{moment}]").status_code)
                if name == "open link" and moment == "inside the baseline window":
                    assert statuses == [302, 302, 200, 200, 200, 200], statuses
    assert not reads.changes, f"{len(reads.changes)} page reads wrote:\n" + "\n".join(reads.changes)


def test_path_parameters_are_filled_by_name_or_by_the_segment_before_them():
    records = {
        "study": [{"id": "3", "code": "MAP"}],
        "site": [{"id": "1", "code": "PDX"}, {"id": "2", "code": "NYC"}],
        "arm": [{"id": "7", "code": "mdma"}],
        "link": [{"token": "t0k"}],
        "export": [{"dataset": "visits", "fmt": "csv"}, {"dataset": "codebook", "fmt": "json"}],
    }
    assert api_paths.fillings("/api/v1/studies/{code}/arms/{arm_id}/", records) == [{"code": "MAP", "arm_id": "7"}]
    assert api_paths.fillings("/api/v1/calendar/sites/{site_code}.ics", records) == [
        {"site_code": "PDX"},
        {"site_code": "NYC"},
    ]
    assert api_paths.fillings("/api/v1/sites/{id}/", records, limit=1) == [{"id": "1"}]
    assert api_paths.fillings("/api/v1/links/{token}/", records) == [{"token": "t0k"}]
    # Parameters served by one noun come from the same record.
    assert api_paths.fillings("/api/v1/export/{dataset}.{fmt}", records) == records["export"]
    assert api_paths.unresolved("/api/v1/rooms/{id}/", records) == ["id"]
    assert api_paths.unresolved("/api/v1/things/{thing_id}/", records) == ["thing_id"]
    assert api_paths.fillings("/api/v1/things/{thing_id}/", records) == []
