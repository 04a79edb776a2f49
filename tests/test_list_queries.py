"""List endpoints cost the same number of queries however many rows they show, along every dimension they touch.

Every list GET of the live OpenAPI schema (and the two calendar feeds, which list visits) is measured on a small trial
and again after the trial grew in every direction a list can reach through: more sites, more studies (one with three
arms), more participants at every site and study, more visits, booked sessions and deviations for the participant and
visit the per-participant lists show, more instruments (a site-loaded one) and more administrations and responses on the
visit, more notifications, safety alerts (some acknowledged, by other users), rooms, data freezes, staff and
memberships. Each list must show more rows after the growth, and cost exactly as many queries, for an administrator of
every site, a blinded investigator of every site and a superuser.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assessments import services as assessments
from assessments.models import SafetyAlert
from exports import services as exports
from notifications import services as notifications
from participants import services as participants
from participants.models import Arm, EligibilityCriterion, Participant, Study
from safety import services as safety
from scheduling import services as scheduling
from scheduling.models import Visit
from tests.factories import SiteFactory, StudyFactory, UserFactory
from tests.support import api_paths
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
SMALL_SITES = ("PDX", "NYC")
LARGE_SITES = ("PDX", "NYC", "SEA", "BOS")
ZONES = {
    "PDX": "America/Los_Angeles",
    "NYC": "America/New_York",
    "SEA": "America/Los_Angeles",
    "BOS": "America/New_York",
}
CSSRS_HIGH = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}
# Instruments typed in at the focus visit as the trial grows: clinician ratings and paper questionnaires.
MORE_INSTRUMENTS = ("CAPS5", "LSAS", "PCL5", "SCS", "SCS_SF", "LSAS_SR")
# Lists that the schema does not call lists: the calendar feeds list booked visits.
FEEDS = ("/api/v1/calendar/me.ics", "/api/v1/calendar/sites/{site_code}.ics")
# The lists this test must find in the schema (a renamed operation must not make it measure nothing).
EXPECTED = {
    "/api/v1/adverse-events/",
    "/api/v1/concomitant-medications/",
    "/api/v1/medication-overrides/",
    "/api/v1/treatment-guesses/",
    "/api/v1/deviations/",
    "/api/v1/dosing-sessions/",
    "/api/v1/export/freezes/",
    "/api/v1/instruments/",
    "/api/v1/notifications/",
    "/api/v1/participants/",
    "/api/v1/participants/{participant_id}/deviations/",
    "/api/v1/participants/{participant_id}/history/",
    "/api/v1/participants/{participant_id}/visits/",
    "/api/v1/rooms/",
    "/api/v1/safety-alerts/",
    "/api/v1/sites/",
    "/api/v1/studies/",
    "/api/v1/visits/",
    "/api/v1/visits/{visit_id}/administrations/",
}


def complete_answers(client, code: str) -> dict:
    """A complete set of answers from the instrument's published definition: the first option of every item shown."""
    definition = client.get(f"/api/v1/instruments/{code}/").json()
    answers: dict = {}
    for item in definition["items"]:
        condition = item["show_if"]
        if condition is None or answers.get(condition["item"]) == condition["equals"]:
            answers[item["code"]] = item["options"][0]["value"]
    return answers


class Trial:
    """A trial that grows. Studies, arms, criteria and sites come from the factories, as in tests/factories.py;
    everything else goes through the services, as the application does."""

    def __init__(self, tmp_path: Path, now: dt.datetime):
        self.tmp_path = tmp_path
        self.first_slot = now + dt.timedelta(days=7)
        self.superuser = UserFactory(username="system-admin", is_superuser=True)
        self.admin = UserFactory(username="lists-admin")
        self.investigator = UserFactory(username="lists-investigator")
        self.clerk = UserFactory(username="lists-clerk")  # enters answers and records deviations everywhere
        self.sites: dict = {}
        self.studies: list[Study] = []
        self.staff_counter = itertools.count(1)
        self.slot_counter = itertools.count(0)

    # --- structure ---------------------------------------------------------------------------------------------------

    def add_study(self, code: str, *, arms, protocol_code: str, site_codes) -> Study:
        """A study as tests/factories.build_study makes one, with an allocation list for every site that will ever
        join (a list in use cannot be replaced) and blocks fitting any number of arms."""
        study = StudyFactory(code=code, protocol_code=protocol_code, blinded=True)
        for arm in arms:
            Arm.objects.get_or_create(study=study, code=arm, defaults={"label": arm.title()})
        for criterion, kind in (("INC_AGE", "inclusion"), ("EXC_PREG", "exclusion")):
            EligibilityCriterion.objects.get_or_create(
                study=study, code=criterion, defaults={"kind": kind, "text": criterion.title()}
            )
        with transaction.atomic():
            participants.consent_document_publish(study=study, version="1.0", title="Main consent", by=self.superuser)
            participants.allocation_list_generate(
                study=study,
                strata=list(LARGE_SITES),
                block_sizes=[len(arms), 2 * len(arms)],
                per_stratum=12,
                seed=f"lists-{code}",
                by=self.superuser,
            )
        self.studies.append(study)
        for site in self.sites.values():
            site.studies.add(study)
        for site_code in site_codes:
            self.add_site(SiteFactory(code=site_code, time_zone=ZONES[site_code]))
        return study

    def add_site(self, site) -> None:
        if site.code in self.sites:
            return
        self.sites[site.code] = site
        for study in self.studies:
            site.studies.add(study)
        with transaction.atomic():
            for user, role in (
                (self.admin, Role.ADMIN),
                (self.investigator, Role.INVESTIGATOR),
                (self.clerk, Role.COORDINATOR),
                (self.clerk, Role.RATER),
            ):
                participants.membership_grant(user=user, site=site, role=role, by=self.superuser)
            for role in (Role.THERAPIST, Role.INVESTIGATOR):
                extra = UserFactory(username=f"{role.value}-{site.code.lower()}-{next(self.staff_counter)}")
                participants.membership_grant(user=extra, site=site, role=role, by=self.superuser)
            scheduling.room_create(site=site, name=f"Room {len(self.sites)}", by=self.superuser)

    def therapist_at(self, site) -> str:
        return (
            get_user_model()
            .objects.filter(memberships__site=site, memberships__role=Role.THERAPIST)
            .order_by("id")
            .values_list("username", flat=True)[0]
        )

    # --- participants ------------------------------------------------------------------------------------------------

    def add_participant(self, study: Study, site) -> Participant:
        by = self.clerk
        with transaction.atomic():
            p = participants.participant_create(
                study=study, site=site, by=by, contact={"full_name": "Test Person", "email": "person@example.org"}
            )
            participants.eligibility_record(participant=p, answers={"INC_AGE": True, "EXC_PREG": False}, by=by)
            participants.consent_record(
                participant=p, version="1.0", by=by, signed_at=timezone.now() - dt.timedelta(hours=1)
            )
            participants.participant_enroll(participant=p, by=by)
            participants.participant_randomize(participant=p, by=by)
        p = Participant.objects.get(pk=p.pk)
        visits = list(Visit.objects.filter(participant=p).order_by("target_date", "id"))
        if visits:
            first = visits[0]
            with transaction.atomic():
                assessments.response_create_staff(
                    participant=p, visit=first, instrument_code="CSSRS_SCREEN", answers=CSSRS_HIGH, by=by
                )
                scheduling.deviation_record(
                    participant=p, type="procedure", description="vitals taken late", by=by, visit=first
                )
                self.book(visits[1])
                self.adverse_event(p, first)
                self.dosing_session(p)
                self.medication(p, visits)
        notifications.notifications_reconcile(participant_id=p.pk)
        return p

    def adverse_event(self, p: Participant, visit: Visit) -> None:
        """A serious AESI linked to a visit, with a follow-up and an investigator's review."""
        event = safety.adverse_event_record(
            participant=p,
            visit=visit,
            verbatim_term="palpitations",
            onset_at=timezone.now() - dt.timedelta(hours=1),
            severity_grade=3,
            relatedness_drug="possible",
            relatedness_therapy="unlikely",
            expectedness="expected",
            action_taken="not_applicable",
            outcome="recovering",
            seriousness=frozenset({"serious_important_medical_event"}),
            aesi_categories=["cardiovascular"],
            by=self.admin,
        )
        safety.adverse_event_follow_up(event=event, note="settled", by=self.admin)
        safety.adverse_event_review(
            event=event, causality_drug="possible", causality_therapy="unlikely", by=self.investigator
        )

    def dosing_session(self, p: Participant) -> None:
        """The first dosing visit's record, with present staff and a vital sign over a threshold."""
        dose = Visit.objects.filter(participant=p, kind="dosing").order_by("target_date", "id").first()
        if dose is None:
            return
        session = safety.dosing_session_open(
            visit=dose, by=self.admin, started_at=timezone.now() - dt.timedelta(hours=3), present_staff=[self.admin]
        )
        safety.vital_sign_record(
            session=session,
            timepoint_code="PRE",
            measured_at=timezone.now() - dt.timedelta(hours=2),
            heart_rate=120,
            by=self.admin,
        )

    def medication(self, p: Participant, visits: list[Visit]) -> None:
        """A medication recorded by the administrator and an investigator's override on the first dosing session."""
        safety.medication_record(
            participant=p,
            name="lorazepam",
            medication_class="benzodiazepine",
            dose_text="0.5 mg as needed",
            start_date=timezone.localdate() - dt.timedelta(days=10),
            by=self.admin,
        )
        dose = next((v for v in visits if v.kind == "dosing"), None)
        if dose is not None:
            safety.medication_override_record(visit=dose, reason="considered", by=self.investigator)
        dose = Visit.objects.filter(participant=p, kind="dosing").order_by("dosing_number", "id").first()
        if dose is not None:
            guess = safety.guess_record(
                participant=p,
                visit=dose,
                respondent="participant",
                guess="dont_know",
                confidence=0,
                by=self.investigator,
            )
            safety.guess_correct(treatment_guess=guess, reason="read again", confidence=20, by=self.investigator)

    def book(self, visit: Visit) -> None:
        """A session with a room and two staff (one of them the measured administrator, for their own calendar)."""
        # One timeline for every booking, two hours apart: the administrator is on all of them.
        start = self.first_slot + dt.timedelta(hours=2 * next(self.slot_counter))
        site = visit.participant.site
        room = site.rooms.order_by("id").first()
        scheduling.visit_schedule(
            visit=visit,
            start=start,
            room=room,
            staff=[self.admin.username, self.therapist_at(site)],
            by=self.clerk,
        )

    def acknowledge_some_alerts(self) -> None:
        for alert in SafetyAlert.objects.filter(acknowledged_at__isnull=True).order_by("id")[::2]:
            site = alert.participant.site
            reader = (
                get_user_model()
                .objects.filter(memberships__site=site, memberships__role=Role.INVESTIGATOR)
                .exclude(pk=self.investigator.pk)
                .order_by("-id")
                .first()
            )
            with transaction.atomic():
                assessments.safety_alert_acknowledge(alert=alert, note="called, safe", by=reader)

    def freeze(self, *, by, label: str) -> None:
        # A freeze's file is named for the instant; the clock stands still here, so move it on a second for each.
        with time_machine.travel(timezone.now() + dt.timedelta(seconds=1 + next(self.slot_counter)), tick=False):
            exports.freeze_create(by=by, label=label)

    def load_local_instrument(self, code: str) -> None:
        """A site-loaded instrument: the shipped short self-compassion form (neutral labels only) under a new code."""
        source = ROOT / "assessments" / "instruments" / "SCS_SF.json"
        definition = json.loads(source.read_text())
        definition["code"] = code
        path = self.tmp_path / f"{code}.json"
        path.write_text(json.dumps(definition))
        assessments.instrument_version_load(path=path, by=self.superuser)


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.FREEZE_DIR = tmp_path / "freezes"
    cache.clear()
    yield
    cache.clear()


def build_small(trial: Trial) -> tuple[Participant, Visit]:
    """One study, two sites, one participant at each; returns the participant and visit the nested lists show."""
    study = trial.add_study("MAP", arms=("mdma", "placebo"), protocol_code="mapp-v1", site_codes=SMALL_SITES)
    focus = trial.add_participant(study, trial.sites["PDX"])
    trial.add_participant(study, trial.sites["NYC"])
    trial.acknowledge_some_alerts()
    trial.freeze(by=trial.admin, label="first")
    visit = Visit.objects.filter(participant=focus).order_by("target_date", "id").first()
    return focus, visit


def grow(trial: Trial, focus: Participant, visit: Visit, client) -> None:
    """Every dimension at least doubled: sites, studies and arms, participants, the focus participant's visits,
    sessions and deviations, the focus visit's administrations and responses, instruments, alerts, freezes, staff."""
    trial.add_study("SAM", arms=("immediate", "delayed"), protocol_code="samati-v1", site_codes=LARGE_SITES)
    trial.add_study("TRI", arms=("low", "mid", "high"), protocol_code="", site_codes=LARGE_SITES)
    for site in trial.sites.values():
        with transaction.atomic():
            scheduling.room_create(site=site, name=f"Second room {site.code}", by=trial.superuser)
    for study, site in itertools.product(trial.studies, trial.sites.values()):
        trial.add_participant(study, site)
    by = trial.clerk
    trial.load_local_instrument("SCS_SF_SITE")
    for code in (*MORE_INSTRUMENTS, "SCS_SF_SITE"):
        with transaction.atomic():
            assessments.response_create_staff(
                participant=focus, visit=visit, instrument_code=code, answers=complete_answers(client, code), by=by
            )
    focus_visits = list(Visit.objects.filter(participant=focus, unscheduled=False).order_by("target_date", "id"))
    with transaction.atomic():
        for kind in ("assessment", "follow_up", "baseline"):
            extra = scheduling.visit_add_unscheduled(participant=focus, kind=kind, duration_minutes=30, by=by)
            scheduling.deviation_record(
                participant=focus, type="other", description="note", by=trial.admin, visit=extra
            )
        trial.book(focus_visits[2])
        trial.book(focus_visits[3])
    notifications.notifications_reconcile(participant_id=focus.pk)
    trial.acknowledge_some_alerts()
    trial.freeze(by=trial.admin, label="second")
    trial.freeze(by=trial.investigator, label="blinded")
    # The focus study's configuration lists (criteria, consent versions) and the focus site's staff.
    with transaction.atomic():
        for number in range(3):
            participants.membership_grant(
                user=UserFactory(username=f"lists-extra-{number}"),
                site=trial.sites["PDX"],
                role="coordinator",
                by=trial.superuser,
            )
        first = trial.studies[0]
        for number in range(3):
            participants.criterion_create(
                study=first, code=f"INC_EXTRA{number}", kind="inclusion", text=f"Extra {number}", by=trial.superuser
            )
            participants.consent_document_publish(
                study=first, version=f"2.{number}", title="Amended consent", by=trial.superuser
            )


def rows_of(response) -> int:
    if response["Content-Type"].startswith("text/calendar"):
        return response.content.count(b"BEGIN:VEVENT")
    body = response.json()
    return len(body["results"] if isinstance(body, dict) and "results" in body else body)


def measure(client, url: str) -> tuple[int, int, int]:
    """(status, queries, rows) of one GET, after a first GET that warms per-process caches (instrument definitions)."""
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    rows = rows_of(response) if response.status_code == 200 else 0
    return response.status_code, len(captured.captured_queries), rows


def list_paths(client) -> list[str]:
    schema = api_paths.load_schema(client)
    lists = [path for path, op in api_paths.operations(schema, "get") if op["operationId"].endswith("_list")]
    missing = EXPECTED - set(lists)
    assert not missing, f"list operations missing from the schema: {sorted(missing)}"
    return [*lists, *FEEDS]


def test_list_query_counts_do_not_grow_along_any_dimension(api, tmp_path):
    start = (timezone.now() + dt.timedelta(days=1)).replace(hour=18, minute=0, second=0, microsecond=0)
    with time_machine.travel(start, tick=False):
        trial = Trial(tmp_path, start)
        focus, visit = build_small(trial)
        records = {
            "participant": [{"id": focus.participant_id}],
            "visit": [{"id": str(visit.pk)}],
            "site": [{"id": str(trial.sites["PDX"].pk), "code": "PDX"}],
            "study": [{"code": "MAP"}],
        }
        users = {"admin": trial.admin, "investigator": trial.investigator, "superuser": trial.superuser}
        paths = list_paths(api(trial.admin))
        unfilled = {path: api_paths.unresolved(path, records) for path in paths if api_paths.unresolved(path, records)}
        assert not unfilled, f"path parameters this test cannot fill: {unfilled}"
        urls = {path: api_paths.fill(path, api_paths.fillings(path, records)[0]) + "?page_size=500" for path in paths}
        small = {(who, path): measure(api(user), url) for who, user in users.items() for path, url in urls.items()}

        grow(trial, focus, visit, api(trial.admin))
        large = {(who, path): measure(api(user), url) for who, user in users.items() for path, url in urls.items()}

    problems = []
    for (who, path), (status, queries, rows) in sorted(small.items()):
        big_status, big_queries, big_rows = large[(who, path)]
        if who == "admin" and not (status == big_status == 200 and 0 < rows < big_rows):
            problems.append(
                f"{path} as {who}: rows must grow from a non-empty list ({status}/{rows} -> {big_status}/{big_rows})"
            )
        if status != big_status:
            problems.append(f"{path} as {who}: status {status} with few rows, {big_status} with many")
        elif big_queries != queries:
            problems.append(f"{path} as {who}: {queries} queries for {rows} rows, {big_queries} for {big_rows}")
    assert not problems, "\n".join(problems)
