"""Every service of every app writes its audit events: a table-driven test over the registry of services.

The registry is discovered, never listed: each public function defined in a submodule of an app's ``services``
package (``audit.services`` is the trail itself). Each one has a case in CASES that seeds what it needs, names the
inputs of ONE call that really changes something, and the events that call must append, by the acting user. A few
services write operational rows only, by design: NOT_AUDITED names them with the reason, and their case proves they
change no trial table but their own. A new service without a case fails here, and so does a case for a service that
is gone.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import importlib
import inspect
import json
import pkgutil
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pytest
import redis
import time_machine
from django.core import mail
from django.db import transaction
from django.utils import timezone

from assessments import services as assessment_services
from assessments.definitions import visible_items
from assessments.library import instrument_get, shipped_instruments
from assessments.models import Administration, ParticipantLink, Response, SafetyAlert, Score
from assessments.scoring import score
from audit.models import AuditEvent
from audit.verify import verify_chain
from exports import services as export_services
from notifications import services as notification_services
from notifications.models import Notification, ReminderPlan
from participants import services as participant_services
from participants.models import EligibilityCriterion, Participant, Site
from safety import services as safety_services
from safety.models import AdverseEvent, TreatmentGuess
from scheduling import services as scheduling_services
from scheduling.models import ProtocolVersion, Room, Visit
from scheduling.protocol import SHIPPED_DIR, VisitKind
from tests.conftest import advance, changed_tables, table_state
from tests.factories import UserFactory, build_study
from tests.support.processes import broker, broker_url, purged
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

APPS = ("participants", "scheduling", "assessments", "safety", "notifications", "exports")


def discover() -> dict[str, Callable[..., Any]]:
    """Every public function defined in a submodule of an app's services package, by qualified name."""
    found = {}
    for app in APPS:
        package = importlib.import_module(f"{app}.services")
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for name, obj in vars(module).items():
                if not name.startswith("_") and inspect.isfunction(obj) and obj.__module__ == module.__name__:
                    found[f"{module.__name__}.{name}"] = obj
    return found


REGISTRY = discover()

# Friday 20 February 2026, 10:00 in Portland: the seeded participants are randomized now, so every visit window and
# outbox time below is a fixed date.
T0 = dt.datetime(2026, 2, 20, 18, 0, tzinfo=dt.UTC)
LA = zoneinfo.ZoneInfo("America/Los_Angeles")
HIGH_RISK = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}
NO_RISK = {"CSSRS_1": 0, "CSSRS_2": 0, "CSSRS_6": 0}


@dataclass(frozen=True)
class Event:
    """An audit event a call must append: its entity and action, and where natural the field and sensitivity."""

    entity_type: str
    action: str
    field: str | None = None
    sensitivity: str | None = None

    def matches(self, event: AuditEvent) -> bool:
        return (
            (event.entity_type, event.action) == (self.entity_type, self.action)
            and self.field in (None, event.field)
            and self.sensitivity in (None, event.sensitivity)
        )


@dataclass
class Case:
    """One call of a service: its keyword arguments, who acts (None: the system), and what it must leave behind."""

    kwargs: dict[str, Any]
    by: Any
    events: list[Event] = field(default_factory=list)
    # Every expected event names this participant (and its site), so the participant's history is one read.
    participant: Participant | None = None
    # The clock during the call, when the call depends on it (a questionnaire window, a due reminder).
    at: dt.datetime | None = None
    # Around the call, e.g. the Celery app pointed at a broker of this test's own.
    around: Callable[[], contextlib.AbstractContextManager[Any]] | None = None
    # After the call: finish what it started (read a lazy stream) and check what the events cannot show.
    then: Callable[[Any, list[AuditEvent]], None] | None = None
    # NOT_AUDITED services only: exactly the (operational) tables the call changes.
    writes: frozenset[str] = frozenset()
    # The name on the events when it is not the actor's own (a participant's saves through a link).
    actor_username: str | None = None


CaseFn = Callable[["Trial"], Case]
CASES: dict[str, CaseFn] = {}


def case(name: str) -> Callable[[CaseFn], CaseFn]:
    def register(fn: CaseFn) -> CaseFn:
        assert name not in CASES, f"two cases for {name}"
        CASES[name] = fn
        return fn

    return register


# Services that write no audit row by design: they move operational rows (the outbox, delivery marks, drafts), never
# trial data. Each still has a case in CASES, which proves that it changes no trial table but its own.
NOT_AUDITED: dict[str, str] = {
    "assessments.services.safety.safety_alert_notify": (
        "notified_at is a delivery claim, not trial data; the alert was audited when it was raised"
    ),
    "assessments.services.safety.safety_alerts_notify_pending": (
        "the sweep claims notified_at through safety_alert_notify, a delivery claim and not trial data"
    ),
    "safety.services.alerting.adverse_events_notify_pending": (
        "the sweep claims notified_at through adverse_event_notify, a delivery claim and not trial data"
    ),
    "assessments.services.safety.safety_alert_escalation_notify": (
        "sends mail only and writes no row; the escalation itself is audited by safety_alerts_escalate_due"
    ),
    "safety.services.alerting.adverse_event_notify": (
        "notified_at is a delivery claim, not trial data; the clock's start was audited with the event"
    ),
    "safety.services.alerting.adverse_event_escalation_notify": (
        "escalation_notified_at is a delivery claim; the escalation itself is audited by adverse_events_escalate_due"
    ),
    "notifications.services.planning.notifications_reconcile": (
        "outbox rows follow from audited changes (a visit booked, a questionnaire answered) and each row keeps its "
        "own history (status, due time, cancel reason); the reminder plan row is the sweep's bookkeeping"
    ),
    "notifications.services.planning.notifications_reconcile_changed": (
        "the periodic sweep: it re-plans through notifications_reconcile and marks the plans it compared"
    ),
    "notifications.services.dispatch.notifications_claim_due": (
        "claiming moves outbox rows through the delivery protocol; the row records its own status and claim"
    ),
    "notifications.services.dispatch.enqueue_sends": (
        "hands claimed rows to the broker; it writes only to release claims the broker refused"
    ),
    "notifications.services.delivery.notifications_send_batch": (
        "delivery marks (attempts, sent, failure, backoff) are the outbox row's own status; a questionnaire "
        "reminder's link is issued through the audited link_issue"
    ),
    "notifications.services.delivery.notification_send": "one row of notifications_send_batch: the same reason",
}


# --- what the cases seed from ---------------------------------------------------------------------------------------


class Trial:
    """The conftest fixtures and a few seeded states, each built only when a case asks for it."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Any) -> None:
        self._request = request
        self.tmp_path = tmp_path

    def _fixture(self, name: str) -> Any:
        return self._request.getfixturevalue(name)

    @cached_property
    def study(self):
        return self._fixture("study")

    @cached_property
    def pdx(self) -> Site:
        return self._fixture("pdx")

    @cached_property
    def alice(self):
        """Coordinator at PDX."""
        return self._fixture("alice")

    @cached_property
    def personas(self) -> dict[str, Any]:
        return self._fixture("personas")

    @cached_property
    def settings(self):
        return self._fixture("settings")

    @cached_property
    def root(self):
        """A superuser: configuration that is not a single site's."""
        return UserFactory(username="root", is_superuser=True)

    @cached_property
    def admin(self):
        """Administrator at PDX."""
        return self.personas[Role.ADMIN]

    @cached_property
    def rater(self):
        return self.personas[Role.RATER]

    @cached_property
    def investigator(self):
        user = self.personas[Role.INVESTIGATOR]
        user.email = "investigator@example.org"
        user.save(update_fields=["email"])
        return user

    @cached_property
    def statistician(self):
        """Statistician (blinded) at PDX; freezes go to this test's own directory."""
        self.settings.FREEZE_DIR = self.tmp_path / "freezes"
        return self.personas[Role.STATISTICIAN]

    def participant(self, to: str = "screening") -> Participant:
        return self._fixture("make_participant")(to, contact={"full_name": "Test Person", "email": "p@example.org"})

    @cached_property
    def randomized(self) -> Participant:
        """Randomized now (T0); the randomize hook generated the visits and their administrations."""
        participant = self.participant("randomized")
        assert Visit.objects.filter(participant=participant).exists()
        return participant

    def visit(self, code: str) -> Visit:
        return Visit.objects.select_related("participant__site").get(participant=self.randomized, code=code)

    def in_window(self, code: str) -> dt.datetime:
        """Noon, the participant's time, on the first day of the visit's window."""
        visit = self.visit(code)
        return dt.datetime.combine(
            visit.window_start, dt.time(12), tzinfo=zoneinfo.ZoneInfo(visit.participant.time_zone)
        )

    def administration(self, visit_code: str, instrument: str) -> Administration:
        return Administration.objects.get(visit=self.visit(visit_code), instrument_code=instrument)

    def link(self) -> ParticipantLink:
        """A link to the BASELINE self-reports, issued inside their window."""
        with time_machine.travel(self.in_window("BASELINE"), tick=True), transaction.atomic():
            link, _token = assessment_services.link_issue(visit=self.visit("BASELINE"), by=self.alice)
        return link

    def response(self, visit_code: str = "BASELINE", instrument: str = "CAPS5", answers=None) -> Response:
        with transaction.atomic():
            return assessment_services.response_create_staff(
                participant=self.randomized,
                visit=self.visit(visit_code),
                instrument_code=instrument,
                answers=answers or complete(instrument),
                by=self.rater,
            )

    def alert(self) -> SafetyAlert:
        """A high-risk C-SSRS at screening: an open alert."""
        response = self.response("SCREEN", "CSSRS_SCREEN", HIGH_RISK)
        return SafetyAlert.objects.get(response=response)

    def adverse_event(self, **extra: Any) -> AdverseEvent:
        """A serious adverse event (hospitalisation) recorded by the coordinator an hour ago: its clock is running."""
        values: dict[str, Any] = dict(
            participant=self.randomized,
            verbatim_term="chest pain during session",
            onset_at=timezone.now() - dt.timedelta(hours=2),
            severity_grade=3,
            relatedness_drug="possible",
            relatedness_therapy="unlikely",
            expectedness="unexpected",
            action_taken="not_applicable",
            outcome="recovering",
            seriousness=frozenset({"serious_hospitalisation"}),
            aesi_categories=["cardiovascular"],
            by=self.alice,
        )
        with transaction.atomic():
            return safety_services.adverse_event_record(**(values | extra))

    def dosing_session(self):
        """DOSE1's session, opened by the coordinator three hours ago."""
        with transaction.atomic():
            return safety_services.dosing_session_open(
                visit=self.visit("DOSE1"), by=self.alice, started_at=timezone.now() - dt.timedelta(hours=3)
            )

    def vital_sign(self):
        with transaction.atomic():
            return safety_services.vital_sign_record(
                session=self.dosing_session(),
                timepoint_code="PRE",
                measured_at=timezone.now() - dt.timedelta(hours=2),
                heart_rate=80,
                by=self.alice,
            )

    def guess(self) -> TreatmentGuess:
        """The participant's own guess after DOSE1, entered by the coordinator."""
        with transaction.atomic():
            return safety_services.guess_record(
                participant=self.randomized,
                visit=self.visit("DOSE1"),
                respondent="participant",
                guess="dont_know",
                confidence=10,
                by=self.alice,
            )

    def outbox(self) -> Notification:
        """BASELINE booked for Monday 9 March, 14:00 in Portland, and the outbox planned: returns the reminder due
        48 hours before the visit."""
        with transaction.atomic():
            scheduling_services.visit_schedule(
                visit=self.visit("BASELINE"), start=dt.datetime(2026, 3, 9, 14, tzinfo=LA), by=self.alice
            )
        notification_services.notifications_reconcile(participant_id=self.randomized.pk)
        return Notification.objects.get(participant=self.randomized, template="visit_reminder", key__contains=":48h:")

    def claimed(self) -> tuple[Notification, str]:
        row = self.outbox()
        claims = dict(notification_services.notifications_claim_due(now=row.due_at))
        return row, claims[row.pk]

    def write_json(self, name: str, data: dict[str, Any]) -> str:
        path = self.tmp_path / name
        path.write_text(json.dumps(data), encoding="utf-8")
        return str(path)


def complete(code: str) -> dict[str, Any]:
    """Complete answers to an instrument: the first value of every item shown."""
    instrument = instrument_get(code)
    answers = {item.code: item.values[0] for item in instrument.items}
    shown = {item.code for item in visible_items(instrument, answers)}
    return {k: v for k, v in answers.items() if k in shown}


def table(model: Any) -> str:
    return model._meta.db_table


def mailed(subject: str, to: str) -> Callable[[Any, list[AuditEvent]], None]:
    def check(_result: Any, _events: list[AuditEvent]) -> None:
        assert [(m.to, subject in m.subject) for m in mail.outbox] == [([to], True)]

    return check


def read_to_the_end(chunks: Iterator[bytes]) -> bytes:
    """An export is audited when its stream ends."""
    return b"".join(chunks)


# --- participants ---------------------------------------------------------------------------------------------------


@case("participants.services.studies.study_create")
def study_create(t: Trial) -> Case:
    return Case(
        dict(code="NEXT", title="A second study", protocol_code="samati-v1", target_enrollment=40, blinded=True),
        by=t.root,
        events=[Event("study", "create", "code"), Event("study", "create", "blinded")],
    )


@case("participants.services.studies.study_update")
def study_update(t: Trial) -> Case:
    return Case(
        dict(study=t.study, reason="protocol amendment 2", title="Amended title", target_enrollment=80),
        by=t.root,
        events=[Event("study", "update", "title"), Event("study", "update", "target_enrollment")],
    )


@case("participants.services.studies.arm_create")
def arm_create(t: Trial) -> Case:
    return Case(
        dict(study=t.study, code="low", label="Low dose"),
        by=t.root,
        events=[Event("arm", "create", "code"), Event("arm", "create", "label")],
    )


@case("participants.services.sites.site_create")
def site_create(t: Trial) -> Case:
    return Case(
        dict(code="SEA", name="Seattle", time_zone="America/Los_Angeles", studies=[t.study]),
        by=t.root,
        events=[Event("site", "create", "code"), Event("site", "create", "studies")],
    )


@case("participants.services.profiles.staff_language_set")
def staff_language_set(t: Trial) -> Case:
    return Case(dict(user=t.rater, language="es"), by=t.rater, events=[Event("staff_profile", "create", "language")])


@case("participants.services.searches.contact_search_record")
def contact_search_record(t: Trial) -> Case:
    # The kind searched and the count are recorded, never the text searched (it is PHI).
    return Case(
        dict(study=t.study, query_kind="phone", result_count=2),
        by=t.alice,
        events=[
            Event("contact_search", "action", "query_kind", sensitivity="contact"),
            Event("contact_search", "action", "result_count", sensitivity="contact"),
        ],
    )


@case("participants.services.sites.site_update")
def site_update(t: Trial) -> Case:
    return Case(
        dict(site=t.pdx, reason="the clinic moved", name="Portland clinic", contact_phone="+1 503 555 0100"),
        by=t.admin,
        events=[Event("site", "update", "name"), Event("site", "update", "contact_phone")],
    )


@case("participants.services.memberships.membership_grant")
def membership_grant(t: Trial) -> Case:
    return Case(
        dict(user=UserFactory(username="carol"), site=t.pdx, role=Role.RATER),
        by=t.admin,
        events=[Event("user", "role_change", "role")],
    )


@case("participants.services.memberships.membership_revoke")
def membership_revoke(t: Trial) -> Case:
    return Case(
        dict(user=t.rater, site=t.pdx, role=Role.RATER, reason="left the study"),
        by=t.admin,
        events=[Event("user", "role_change", "role")],
    )


@case("participants.services.eligibility.criterion_create")
def criterion_create(t: Trial) -> Case:
    return Case(
        dict(study=t.study, code="INC_CONSENT", kind="inclusion", text="Able to give consent"),
        by=t.root,
        events=[Event("eligibility_criterion", "create", "code"), Event("eligibility_criterion", "create", "text")],
    )


@case("participants.services.eligibility.criterion_retire")
def criterion_retire(t: Trial) -> Case:
    criterion = EligibilityCriterion.objects.get(study=t.study, code="EXC_PREG")
    return Case(
        dict(criterion=criterion, reason="protocol amendment 2"),
        by=t.root,
        events=[Event("eligibility_criterion", "update", "retired_at")],
    )


@case("participants.services.eligibility.eligibility_record")
def eligibility_record(t: Trial) -> Case:
    participant = t.participant("screening")
    return Case(
        dict(participant=participant, answers={"INC_AGE": True, "EXC_PREG": False}),
        by=t.alice,
        participant=participant,
        events=[
            Event("eligibility_answer", "create", "INC_AGE"),
            Event("eligibility_answer", "create", "EXC_PREG"),
            Event("participant", "update", "eligibility_verdict"),
            Event("participant", "transition", "status"),
        ],
    )


@case("participants.services.consent.consent_document_publish")
def consent_document_publish(t: Trial) -> Case:
    consented = t.participant("consented")

    def check(_document: Any, events: list[AuditEvent]) -> None:
        (flag,) = [e for e in events if e.field == "needs_reconsent"]
        assert flag.participant_id == consented.participant_id and flag.reason == "consent version 2.0 published"

    return Case(
        dict(study=t.study, version="2.0", title="Amended consent"),
        by=t.alice,
        events=[
            Event("consent_document", "create", "version"),
            Event("consent_document", "create", "title"),
            Event("participant", "update", "needs_reconsent"),
        ],
        then=check,
    )


@case("participants.services.consent.consent_record")
def consent_record(t: Trial) -> Case:
    participant = t.participant("eligible")
    return Case(
        dict(participant=participant, version="1.0", signed_at=timezone.now() - dt.timedelta(minutes=5)),
        by=t.alice,
        participant=participant,
        events=[
            Event("consent_record", "create", "consent_version"),
            Event("consent_record", "create", "signed_at"),
            Event("participant", "transition", "status"),
        ],
    )


@case("participants.services.participants.participant_create")
def participant_create(t: Trial) -> Case:
    def check(participant: Participant, events: list[AuditEvent]) -> None:
        assert {(e.participant_id, e.site_code) for e in events} == {(participant.participant_id, "PDX")}

    return Case(
        dict(study=t.study, site=t.pdx, contact={"email": "a@example.org"}),
        by=t.alice,
        events=[
            Event("participant", "create", "participant_id"),
            Event("participant", "create", "status"),
            Event("contact_details", "create", "email", sensitivity=AuditEvent.Sensitivity.CONTACT),
        ],
        then=check,
    )


@case("participants.services.participants.participant_update")
def participant_update(t: Trial) -> Case:
    participant = t.participant("screening")
    return Case(
        dict(participant=participant, reason="new number", contact={"phone": "+1 503 555 0101"}),
        by=t.alice,
        participant=participant,
        events=[Event("contact_details", "update", "phone", sensitivity=AuditEvent.Sensitivity.CONTACT)],
    )


@case("participants.services.demographics.demographics_record")
def demographics_record(t: Trial) -> Case:
    participant = t.participant("enrolled")
    return Case(
        dict(participant=participant, answers={"age_years": 37, "race": 6}),
        by=t.alice,
        participant=participant,
        events=[
            Event("demographics", "create", "age_years"),
            Event("demographics", "create", "race"),
            Event("demographics", "create", "form_version"),
        ],
    )


@case("participants.services.demographics.demographic_form_load")
def demographic_form_load(t: Trial) -> Case:
    from participants.demographics import shipped_form

    definition = dict(shipped_form().raw) | {"version": "2"}
    return Case(
        dict(definition=definition, source="site-form.json"),
        by=t.root,
        events=[Event("demographic_form", "create", "version"), Event("demographic_form", "create", "fields")],
    )


@case("participants.services.participants.participant_enroll")
def participant_enroll(t: Trial) -> Case:
    participant = t.participant("consented")
    return Case(
        dict(participant=participant),
        by=t.alice,
        participant=participant,
        events=[
            Event("participant", "update", "enrolled_at"),
            Event("participant", "transition", "status"),
            # What the enroll hooks write in the same transaction: the arm-neutral visits, readable by blinded roles.
            Event("participant_schedule", "create", "visits", sensitivity=AuditEvent.Sensitivity.NONE),
            Event("administrations", "create", "administrations"),
        ],
    )


@case("participants.services.allocation.allocation_list_generate")
def allocation_list_generate(t: Trial) -> Case:
    return Case(
        dict(study=t.study, strata=["PDX", "NYC"], block_sizes=[2], per_stratum=4, seed="second list"),
        by=t.root,
        events=[
            Event("allocation_list", "update", "active"),  # the unused list it replaces
            Event("allocation_list", "create", "seed", sensitivity=AuditEvent.Sensitivity.ALLOCATION),
        ],
    )


@case("participants.services.allocation.allocation_list_import")
def allocation_list_import(t: Trial) -> Case:
    return Case(
        dict(study=t.study, csv_text="stratum,sequence,arm\nPDX,1,mdma\nPDX,2,placebo\n"),
        by=t.root,
        events=[Event("allocation_list", "create", "slots", sensitivity=AuditEvent.Sensitivity.ALLOCATION)],
    )


@case("participants.services.allocation.participant_randomize")
def participant_randomize(t: Trial) -> Case:
    participant = t.participant("enrolled")

    def check(slot: Any, events: list[AuditEvent]) -> None:
        (arm,) = [e for e in events if e.field == "arm"]
        assert arm.new_value == slot.arm.code

    return Case(
        dict(participant=participant),
        by=t.alice,
        participant=participant,
        events=[
            Event("participant", "update", "randomized_at"),
            Event("allocation_slot", "update", "arm", sensitivity=AuditEvent.Sensitivity.ALLOCATION),
            Event("participant", "transition", "status"),
            # What the randomize hooks write in the same transaction: the arm's visits join the schedule that
            # enrollment created.
            Event("participant_schedule", "update", "visits", sensitivity=AuditEvent.Sensitivity.ALLOCATION),
            Event("administrations", "create", "administrations"),
        ],
        then=check,
    )


@case("participants.services.withdrawal.participant_withdraw")
def participant_withdraw(t: Trial) -> Case:
    participant = t.randomized
    t.link()
    return Case(
        dict(participant=participant, level="stop_follow_up", reason="moved away", date=T0.date()),
        by=t.alice,
        participant=participant,
        events=[
            Event("participant", "update", "withdrawal_level"),
            Event("participant", "update", "withdrawal_reason"),
            Event("participant", "transition", "status"),
            # The withdrawal's side effects, by the hooks, are audited too.
            Event("visit", "update", "status"),
            Event("administrations", "update"),
            Event("participant_link", "update", "revoked_at"),
        ],
    )


@case("participants.services.accounts.staff_account_flags_set")
def staff_account_flags_set(t: Trial) -> Case:
    return Case(
        dict(user=t.alice, is_superuser=True, is_staff=True, reason="on-call administrator"),
        by=t.root,
        events=[Event("user", "role_change", "is_superuser"), Event("user", "role_change", "is_staff")],
    )


@case("participants.services.accounts.staff_account_save")
def staff_account_save(t: Trial) -> Case:
    user = t.alice
    user.email = "alice.new@example.org"
    return Case(dict(user=user), by=t.root, events=[Event("user", "update", "email")])


@case("participants.services.unblinding.study_unblind")
def study_unblind(t: Trial) -> Case:
    # The second approval: it is audited, and it unblinds (audited too). The first is the same call by another.
    with transaction.atomic():
        participant_services.study_unblind(study=t.study, by=t.investigator, reason="database locked")
    return Case(
        dict(study=t.study, reason="database locked"),
        by=t.personas[Role.UNBLINDED_STATISTICIAN],
        events=[Event("unblinding_approval", "action", "approval"), Event("study", "update", "unblinded")],
    )


@case("participants.services.unblinding.study_unblind_withdraw")
def study_unblind_withdraw(t: Trial) -> Case:
    with transaction.atomic():
        participant_services.study_unblind(study=t.study, by=t.investigator, reason="database locked")
    return Case(
        dict(study=t.study, reason="approved too early"),
        by=t.investigator,
        events=[Event("unblinding_approval", "update", "withdrawn_at")],
    )


# --- scheduling -----------------------------------------------------------------------------------------------------


@case("scheduling.services.booking.visit_schedule")
def visit_schedule(t: Trial) -> Case:
    visit = t.visit("BASELINE")
    return Case(
        dict(visit=visit, start=dt.datetime(2026, 3, 9, 14, tzinfo=LA), staff=[t.alice.username]),
        by=t.alice,
        participant=t.randomized,
        events=[
            Event("visit", "update", "status"),
            Event("visit", "update", "scheduled_start"),
            Event("visit", "update", "staff"),
        ],
    )


@case("scheduling.services.deviations.deviation_record")
def deviation_record(t: Trial) -> Case:
    return Case(
        dict(participant=t.randomized, type="procedure", description="vitals taken late", visit=t.visit("SCREEN")),
        by=t.alice,
        participant=t.randomized,
        events=[Event("protocol_deviation", "create", "type"), Event("protocol_deviation", "create", "description")],
    )


@case("scheduling.services.generation.schedule_generate")
def schedule_generate(t: Trial) -> Case:
    # A single-arm protocol plans the visits anchored on enrollment before randomization. Enrolling generates them
    # itself (the enroll hook), so the participant is enrolled while the study names no protocol yet (it may change
    # until the first randomization): then generating really writes.
    solo = json.loads((SHIPPED_DIR / "mapp-v1.json").read_text())
    solo.update(code="solo-v1", illustrative=False)
    solo["arms"] = {"mdma": solo["arms"]["mdma"]}
    for timepoint in solo["blinded_schedule"]["timepoints"]:
        timepoint["visits"] = {"mdma": timepoint["visits"]["mdma"]}
    with transaction.atomic():
        scheduling_services.protocol_version_load(path=t.write_json("solo-v1.json", solo), by=None)
    study, sites = build_study(code="SOLO", protocol_code="", site_codes=("PDX",))
    with transaction.atomic():
        participant = participant_services.participant_create(study=study, site=sites["PDX"], by=t.alice)
    participant = advance(participant, "enrolled", by=t.alice)
    assert not participant.visits.exists()
    with transaction.atomic():
        participant_services.study_update(study=study, protocol_code="solo-v1", reason="protocol adopted", by=t.root)
    participant.refresh_from_db()

    def check(visits: list[Visit], _events: list[AuditEvent]) -> None:
        assert [v.code for v in visits] == ["SCREEN", "BASELINE"]

    return Case(
        dict(participant=participant),
        by=t.alice,
        participant=participant,
        events=[
            Event("participant_schedule", "create", "visits"),
            Event("administrations", "create", "administrations"),
        ],
        then=check,
    )


@case("scheduling.services.protocols.protocol_version_load")
def protocol_version_load(t: Trial) -> Case:
    data = json.loads((SHIPPED_DIR / "mapp-v1.json").read_text())
    data.update(code="site-mapp", version=1, illustrative=False)
    return Case(
        dict(path=t.write_json("site-protocol.json", data)),
        by=t.root,
        events=[Event("protocol_version", "create", "code"), Event("protocol_version", "create", "source")],
    )


@case("scheduling.services.protocols.protocol_version_ensure")
def protocol_version_ensure(t: Trial) -> Case:
    # The migration stores the shipped protocols; a fresh database without this one stores it on first use.
    ProtocolVersion.objects.filter(code="samati-v1").delete()
    return Case(
        dict(code="samati-v1"),
        by=t.alice,
        events=[Event("protocol_version", "create", "code"), Event("protocol_version", "create", "version")],
    )


@case("scheduling.services.rooms.room_create")
def room_create(t: Trial) -> Case:
    return Case(
        dict(site=t.pdx, name="Room 1", overnight_capable=True),
        by=t.admin,
        events=[Event("room", "create", "name"), Event("room", "create", "overnight_capable")],
    )


def _room(t: Trial) -> Room:
    with transaction.atomic():
        return scheduling_services.room_create(site=t.pdx, name="Room 1", by=t.admin)


@case("scheduling.services.rooms.room_update")
def room_update(t: Trial) -> Case:
    return Case(
        dict(room=_room(t), name="Room 2", overnight_capable=True, reason="renumbered"),
        by=t.admin,
        events=[Event("room", "update", "name"), Event("room", "update", "overnight_capable")],
    )


@case("scheduling.services.rooms.room_retire")
def room_retire(t: Trial) -> Case:
    return Case(
        dict(room=_room(t), reason="the wing closed"),
        by=t.admin,
        events=[Event("room", "update", "retired_at"), Event("room", "update", "active")],
    )


@case("scheduling.services.visits.visit_complete")
def visit_complete(t: Trial) -> Case:
    return Case(
        dict(visit=t.visit("SCREEN"), occurred_at=timezone.now()),
        by=t.alice,
        participant=t.randomized,
        events=[Event("visit", "update", "status"), Event("visit", "update", "occurred_at")],
    )


@case("scheduling.services.visits.visit_miss")
def visit_miss(t: Trial) -> Case:
    return Case(
        dict(visit=t.visit("BASELINE"), reason="did not come"),
        by=t.alice,
        participant=t.randomized,
        events=[Event("visit", "update", "status"), Event("protocol_deviation", "create", "type")],
    )


@case("scheduling.services.visits.visit_cancel")
def visit_cancel(t: Trial) -> Case:
    return Case(
        dict(visit=t.visit("BASELINE"), reason="entered twice"),
        by=t.alice,
        participant=t.randomized,
        events=[Event("visit", "update", "status"), Event("administrations", "update")],
    )


@case("scheduling.services.visits.visits_cancel_for_withdrawal")
def visits_cancel_for_withdrawal(t: Trial) -> Case:
    return Case(
        dict(participant=t.randomized, level="stop_follow_up"),
        by=t.alice,
        participant=t.randomized,
        events=[Event("visit", "update", "status"), Event("administrations", "update")],
    )


@case("scheduling.services.visits.visit_add_unscheduled")
def visit_add_unscheduled(t: Trial) -> Case:
    return Case(
        dict(participant=t.randomized, kind=VisitKind.ASSESSMENT, reason="extra check-up"),
        by=t.alice,
        participant=t.randomized,
        events=[Event("visit", "create", "code"), Event("visit", "create", "kind")],
    )


# --- assessments ----------------------------------------------------------------------------------------------------


@case("assessments.services.administrations.administrations_follow_visits")
def administrations_follow_visits(t: Trial) -> Case:
    # What scheduling does before it calls this hook: the visit's window moved.
    visit = t.visit("BASELINE")
    Visit.objects.filter(pk=visit.pk).update(window_end=visit.window_end + dt.timedelta(days=7))
    return Case(
        dict(participant=t.randomized, visits=[t.visit("BASELINE")]),
        by=t.alice,
        participant=t.randomized,
        events=[Event("administrations", "update", "BASELINE:PCL5.closes_at")],
    )


@case("assessments.services.administrations.administrations_close_for_withdrawal")
def administrations_close_for_withdrawal(t: Trial) -> Case:
    return Case(
        dict(participant=t.randomized, level="stop_contact"),
        by=t.alice,
        participant=t.randomized,
        events=[Event("administrations", "update", "SCREEN:CAPS5.status")],
    )


@case("assessments.services.administrations.administration_add")
def administration_add(t: Trial) -> Case:
    return Case(
        dict(visit=t.visit("BASELINE"), instrument_code="CSSRS_SCREEN", reason="investigator's request"),
        by=t.alice,
        participant=t.randomized,
        events=[Event("administration", "create", "instrument_code")],
    )


@case("assessments.services.administrations.administration_open_early")
def administration_open_early(t: Trial) -> Case:
    return Case(
        dict(administration=t.administration("BASELINE", "PCL5"), reason="travels next week"),
        by=t.alice,
        participant=t.randomized,
        events=[Event("administration", "update", "opens_at")],
    )


@case("assessments.services.library.instrument_version_load")
def instrument_version_load(t: Trial) -> Case:
    data = copy.deepcopy(shipped_instruments()["PCL5"].raw)
    data["version"] = "1.1"
    return Case(
        dict(path=t.write_json("pcl5.json", data)),
        by=t.root,
        events=[Event("instrument_version", "create", "code"), Event("instrument_version", "create", "version")],
    )


@case("assessments.services.texts.instrument_text_load")
def instrument_text_load(t: Trial) -> Case:
    from tests.support.text_packs import pack_data

    data = pack_data("SCS", "es", version="2.0")
    return Case(
        dict(data=data, source="scs-es-2.0.json"),
        by=t.root,
        events=[
            Event("instrument_text", "create", "instrument"),
            Event("instrument_text", "create", "language"),
            Event("instrument_text", "create", "version"),
            Event("instrument_text", "create", "supersedes"),
        ],
    )


@case("assessments.services.links.link_issue")
def link_issue(t: Trial) -> Case:
    return Case(
        dict(visit=t.visit("BASELINE")),
        by=t.alice,
        participant=t.randomized,
        at=t.in_window("BASELINE"),
        events=[Event("participant_link", "create", "visit"), Event("participant_link", "create", "expires_at")],
    )


@case("assessments.services.links.link_issue_in_clinic")
def link_issue_in_clinic(t: Trial) -> Case:
    return Case(
        dict(visit=t.visit("BASELINE")),
        by=t.alice,
        participant=t.randomized,
        at=t.in_window("BASELINE"),
        events=[Event("participant_link", "create", "visit"), Event("participant_link", "create", "expires_at")],
    )


@case("assessments.services.links.link_save_answers")
def link_save_answers(t: Trial) -> Case:
    return Case(
        dict(link=t.link(), answers_by_instrument={"PCL5": {"PCL5_01": 2}}),
        by=None,
        participant=t.randomized,
        at=t.in_window("BASELINE"),
        events=[Event("draft_answers", "update", "draft_answers")],
        actor_username="participant-link",
    )


@case("assessments.services.links.link_submit")
def link_submit(t: Trial) -> Case:
    link = t.link()
    with time_machine.travel(t.in_window("BASELINE"), tick=True):
        assessment_services.link_save_answers(
            link=link, answers_by_instrument={"PCL5": complete("PCL5"), "SCS": complete("SCS")}
        )

    def check(responses: list[Response], events: list[AuditEvent]) -> None:
        created = {e.entity_id for e in events if e.entity_type == "response" and e.field == "source"}
        assert created == {str(r.pk) for r in responses} and len(responses) == 2

    return Case(
        dict(link=link),
        by=None,  # the participant: no staff account
        participant=t.randomized,
        at=t.in_window("BASELINE"),
        events=[Event("response", "create", "source"), Event("response", "create", "answers.PCL5_01")],
        then=check,
    )


@case("assessments.services.links.links_revoke_for_participant")
def links_revoke_for_participant(t: Trial) -> Case:
    t.link()
    return Case(
        dict(participant=t.randomized, reason="lost phone"),
        by=t.alice,
        participant=t.randomized,
        events=[Event("participant_link", "update", "revoked_at")],
    )


@case("assessments.services.responses.response_store")
def response_store(t: Trial) -> Case:
    return Case(
        dict(
            administration=t.administration("BASELINE", "CAPS5"),
            answers=complete("CAPS5"),
            source=Response.Source.STAFF,
            now=timezone.now(),
        ),
        by=t.rater,
        participant=t.randomized,
        events=[Event("response", "create", "instrument"), Event("response", "create", "answers.CAPS5_01")],
    )


@case("assessments.services.responses.response_create_staff")
def response_create_staff(t: Trial) -> Case:
    return Case(
        dict(participant=t.randomized, visit=t.visit("BASELINE"), instrument_code="CAPS5", answers=complete("CAPS5")),
        by=t.rater,
        participant=t.randomized,
        events=[Event("response", "create", "source"), Event("response", "create", "answers.CAPS5_01")],
    )


@case("assessments.services.responses.response_correct")
def response_correct(t: Trial) -> Case:
    response = t.response()
    return Case(
        dict(response=response, answers={"CAPS5_01": 3}, reason="typed in the wrong column"),
        by=t.rater,
        participant=t.randomized,
        events=[Event("response", "update", "answers.CAPS5_01"), Event("response_scores", "update")],
    )


@case("assessments.services.responses.responses_rescore")
def responses_rescore(t: Trial) -> Case:
    response = t.response()
    # As if scored by an earlier scoring version: rescoring stamps and audits the current one.
    Score.objects.filter(response=response).update(scoring_version="0")

    def check(counts: tuple[int, int], _events: list[AuditEvent]) -> None:
        assert counts == (1, 1)

    return Case(
        dict(reason="scoring fix"),
        by=t.root,
        participant=t.randomized,
        events=[Event("response_scores", "update", "scoring_version")],
        then=check,
    )


@case("assessments.services.safety.safety_alerts_raise")
def safety_alerts_raise(t: Trial) -> Case:
    response = t.response("SCREEN", "CSSRS_SCREEN", NO_RISK)
    instrument = instrument_get("CSSRS_SCREEN")
    return Case(
        dict(
            response=response,
            instrument=instrument,
            result=score(instrument, HIGH_RISK),
            participant=t.randomized,
            now=timezone.now(),
        ),
        by=None,  # raised by the rules, whoever entered the response
        participant=t.randomized,
        events=[Event("safety_alert", "create", "rule_code"), Event("safety_alert", "create", "severity")],
    )


@case("assessments.services.safety.safety_alert_notify")
def safety_alert_notify(t: Trial) -> Case:
    return Case(
        dict(alert_id=t.alert().pk),
        by=None,
        writes=frozenset({table(SafetyAlert)}),
        then=mailed("Safety alert (high)", to=t.investigator.email),
    )


@case("assessments.services.safety.safety_alerts_notify_pending")
def safety_alerts_notify_pending(t: Trial) -> Case:
    alert = t.alert()
    SafetyAlert.objects.filter(pk=alert.pk).update(notified_at=None)  # its task never reached the broker
    return Case(
        dict(),
        by=None,
        writes=frozenset({table(SafetyAlert)}),
        then=mailed("Safety alert (high)", to=t.investigator.email),
    )


@case("assessments.services.safety.safety_alert_escalation_notify")
def safety_alert_escalation_notify(t: Trial) -> Case:
    return Case(
        dict(alert_id=t.alert().pk), by=None, then=mailed("ESCALATED safety alert (high)", to=t.investigator.email)
    )


@case("assessments.services.safety.safety_alerts_escalate_due")
def safety_alerts_escalate_due(t: Trial) -> Case:
    alert = t.alert()
    return Case(
        dict(now=alert.created_at + dt.timedelta(hours=2)),
        by=None,  # the beat
        participant=t.randomized,
        events=[Event("safety_alert", "update", "escalated_at")],
    )


@case("assessments.services.safety.safety_alert_acknowledge")
def safety_alert_acknowledge(t: Trial) -> Case:
    return Case(
        dict(alert=t.alert(), note="Called the participant; safety plan in place."),
        by=t.investigator,
        participant=t.randomized,
        events=[
            Event("safety_alert", "update", "acknowledged_at"),
            Event("safety_alert", "update", "acknowledgement_note"),
        ],
    )


# --- safety ---------------------------------------------------------------------------------------------------------


@case("safety.services.adverse_events.adverse_event_record")
def adverse_event_record(t: Trial) -> Case:
    return Case(
        dict(
            participant=t.randomized,
            verbatim_term="headache",
            onset_at=timezone.now() - dt.timedelta(hours=3),
            severity_grade=1,
            relatedness_drug="possible",
            relatedness_therapy="not_related",
            expectedness="expected",
            action_taken="dose_not_changed",
            outcome="recovered",
            resolved_at=timezone.now() - dt.timedelta(hours=1),
            visit=t.visit("BASELINE"),
        ),
        by=t.alice,
        participant=t.randomized,
        events=[
            Event("adverse_event", "create", "verbatim_term"),
            Event("adverse_event", "create", "severity_grade"),
            Event("adverse_event", "create", "visit"),
        ],
    )


@case("assessments.services.safety.safety_alert_raise_for")
def safety_alert_raise_for(t: Trial) -> Case:
    return Case(
        dict(
            participant=t.randomized,
            source="vital_sign",
            source_id=123,
            rule_code="SBP_HIGH",
            severity="high",
            message="Vital sign SBP_HIGH: systolic_bp 170 (systolic_bp > 160) at PRE",
        ),
        by=t.alice,
        participant=t.randomized,
        events=[Event("safety_alert", "create", "source"), Event("safety_alert", "create", "rule_code")],
    )


@case("safety.services.dosing.dosing_session_open")
def dosing_session_open(t: Trial) -> Case:
    return Case(
        dict(visit=t.visit("DOSE1"), kit_identifier="KIT-1", started_at=timezone.now() - dt.timedelta(hours=1)),
        by=t.alice,
        participant=t.randomized,
        events=[Event("dosing_session", "create", "visit"), Event("dosing_session", "create", "kit_identifier")],
    )


@case("safety.services.dosing.dosing_session_record")
def dosing_session_record(t: Trial) -> Case:
    return Case(
        dict(
            session=t.dosing_session(),
            kit_identifier="KIT-2",
            present_others=[{"name": "A. Monitor", "role": "monitor"}],
        ),
        by=t.alice,
        participant=t.randomized,
        events=[
            Event("dosing_session", "update", "kit_identifier"),
            Event("dosing_session", "update", "present_others"),
        ],
    )


@case("safety.services.dosing.dosing_doses_record")
def dosing_doses_record(t: Trial) -> Case:
    return Case(
        dict(session=t.dosing_session(), initial_dose_mg="120", initial_dose_at=timezone.now() - dt.timedelta(hours=2)),
        by=t.alice,
        participant=t.randomized,
        events=[
            Event("dosing_session", "update", "initial_dose_mg"),
            Event("dosing_session", "update", "initial_dose_at"),
        ],
    )


@case("safety.services.dosing.vital_sign_record")
def vital_sign_record(t: Trial) -> Case:
    return Case(
        dict(
            session=t.dosing_session(),
            timepoint_code="PRE",
            measured_at=timezone.now() - dt.timedelta(hours=2),
            systolic_bp=170,
            diastolic_bp=90,
        ),
        by=t.alice,
        participant=t.randomized,
        events=[
            Event("vital_sign", "create", "systolic_bp"),
            Event("vital_sign", "create", "timepoint_code"),
            Event("safety_alert", "create", "source"),
        ],
    )


@case("safety.services.dosing.vital_sign_correct")
def vital_sign_correct(t: Trial) -> Case:
    return Case(
        dict(vital_sign=t.vital_sign(), reason="misread the monitor", heart_rate=84),
        by=t.alice,
        participant=t.randomized,
        events=[Event("vital_sign", "update", "heart_rate")],
    )


@case("safety.services.dosing.dosing_session_close")
def dosing_session_close(t: Trial) -> Case:
    return Case(
        dict(session=t.vital_sign().session, missing_timepoints_reason="participant asleep"),
        by=t.alice,
        participant=t.randomized,
        events=[
            Event("dosing_session", "update", "closed_at"),
            Event("dosing_session", "update", "missing_timepoints"),
        ],
    )


@case("safety.services.guesses.guess_record")
def guess_record(t: Trial) -> Case:
    return Case(
        dict(
            participant=t.randomized,
            visit=t.visit("DOSE1"),
            respondent="independent_rater",
            guess="mdma",
            confidence=40,
        ),
        by=t.rater,
        participant=t.randomized,
        events=[
            Event("treatment_guess", "create", "respondent"),
            Event("treatment_guess", "create", "guess"),
            Event("treatment_guess", "create", "confidence"),
        ],
    )


@case("safety.services.guesses.guess_correct")
def guess_correct(t: Trial) -> Case:
    return Case(
        dict(treatment_guess=t.guess(), reason="answer read again from the paper form", guess="placebo"),
        by=t.alice,
        participant=t.randomized,
        events=[Event("treatment_guess", "update", "guess")],
    )


@case("safety.services.adverse_events.adverse_event_correct")
def adverse_event_correct(t: Trial) -> Case:
    return Case(
        dict(event=t.adverse_event(), reason="grade confirmed at the follow-up call", severity_grade=2),
        by=t.alice,
        participant=t.randomized,
        events=[Event("adverse_event", "update", "severity_grade")],
    )


@case("safety.services.adverse_events.adverse_event_follow_up")
def adverse_event_follow_up(t: Trial) -> Case:
    return Case(
        dict(event=t.adverse_event(), note="discharged home", outcome="recovered", resolved_at=timezone.now()),
        by=t.alice,
        participant=t.randomized,
        events=[
            Event("adverse_event_follow_up", "create", "note"),
            Event("adverse_event", "update", "outcome"),
            Event("adverse_event", "update", "resolved_at"),
        ],
    )


@case("safety.services.reviews.adverse_event_review")
def adverse_event_review(t: Trial) -> Case:
    return Case(
        dict(event=t.adverse_event(), causality_drug="probable", causality_therapy="unlikely", note="signed"),
        by=t.investigator,
        participant=t.randomized,
        events=[
            Event("adverse_event_review", "create", "causality_drug"),
            Event("adverse_event", "update", "reviewed_at"),
        ],
    )


def _medication(t: Trial, **extra: Any):
    values: dict[str, Any] = dict(
        participant=t.randomized,
        name="sertraline",
        medication_class="ssri",
        dose_amount=50,
        dose_unit="mg",
        start_date=timezone.localdate() - dt.timedelta(days=30),
        by=t.alice,
    )
    with transaction.atomic():
        return safety_services.medication_record(**(values | extra))


@case("safety.services.medications.medication_record")
def medication_record(t: Trial) -> Case:
    return Case(
        dict(
            participant=t.randomized,
            name="sertraline",
            medication_class="ssri",
            dose_amount=50,
            dose_unit="mg",
            start_date=timezone.localdate() - dt.timedelta(days=30),
        ),
        by=t.alice,
        participant=t.randomized,
        events=[
            Event("concomitant_medication", "create", "name"),
            Event("concomitant_medication", "create", "medication_class"),
            Event("concomitant_medication", "create", "start_date"),
        ],
    )


@case("safety.services.medications.medication_correct")
def medication_correct(t: Trial) -> Case:
    return Case(
        dict(medication=_medication(t), reason="dose read from the label", dose_amount=100),
        by=t.alice,
        participant=t.randomized,
        events=[Event("concomitant_medication", "update", "dose_amount")],
    )


@case("safety.services.medications.medication_stop")
def medication_stop(t: Trial) -> Case:
    return Case(
        dict(medication=_medication(t), stop_date=timezone.localdate(), taper_note="halved for a week"),
        by=t.alice,
        participant=t.randomized,
        events=[
            Event("concomitant_medication", "update", "stop_date"),
            Event("concomitant_medication", "update", "taper_note"),
        ],
    )


@case("safety.services.medications.medication_override_record")
def medication_override_record(t: Trial) -> Case:
    return Case(
        dict(visit=t.visit("DOSE1"), reason="stable dose confirmed with the prescriber"),
        by=t.investigator,
        participant=t.randomized,
        events=[Event("medication_override", "create", "visit"), Event("medication_override", "create", "reason")],
    )


@case("safety.services.alerting.adverse_events_escalate_due")
def adverse_events_escalate_due(t: Trial) -> Case:
    event = t.adverse_event()
    return Case(
        dict(now=event.reporting_due_at + dt.timedelta(minutes=1)),
        by=None,  # the beat
        participant=t.randomized,
        events=[Event("adverse_event", "update", "escalated_at")],
    )


@case("safety.services.alerting.adverse_event_notify")
def adverse_event_notify(t: Trial) -> Case:
    return Case(
        dict(event_id=t.adverse_event().pk),
        by=None,
        writes=frozenset({table(AdverseEvent)}),
        then=mailed("Serious adverse event", to=t.investigator.email),
    )


@case("safety.services.alerting.adverse_events_notify_pending")
def adverse_events_notify_pending(t: Trial) -> Case:
    event = t.adverse_event()
    AdverseEvent.objects.filter(pk=event.pk).update(notified_at=None)  # its task never reached the broker
    return Case(
        dict(),
        by=None,
        writes=frozenset({table(AdverseEvent)}),
        then=mailed("Serious adverse event", to=t.investigator.email),
    )


@case("safety.services.alerting.adverse_event_escalation_notify")
def adverse_event_escalation_notify(t: Trial) -> Case:
    event = t.adverse_event()
    with transaction.atomic():
        participant_services.study_update(
            study=t.study, by=None, reason="monitor named", medical_monitor_email="monitor@example.org"
        )
    safety_services.adverse_events_escalate_due(event.reporting_due_at)
    return Case(
        dict(event_id=event.pk),
        by=None,
        writes=frozenset({table(AdverseEvent)}),
        then=mailed("ESCALATED", to="monitor@example.org"),
    )


# --- notifications --------------------------------------------------------------------------------------------------


@case("notifications.services.planning.notifications_reconcile")
def notifications_reconcile(t: Trial) -> Case:
    return Case(
        dict(participant_id=t.randomized.pk),
        by=None,
        writes=frozenset({table(Notification), table(ReminderPlan)}),
    )


@case("notifications.services.planning.notifications_reconcile_changed")
def notifications_reconcile_changed(t: Trial) -> Case:
    assert t.randomized.pk  # a participant whose reminders were never planned: the sweep plans them

    def then(result: object, events: list[AuditEvent]) -> None:
        assert isinstance(result, notification_services.SweepResult)
        assert (result.examined, result.replanned, result.complete) == (1, 1, True) and result.created > 0

    return Case({}, by=None, writes=frozenset({table(Notification), table(ReminderPlan)}), then=then)


@case("notifications.services.planning.notifications_cancel_for_participant")
def notifications_cancel_for_participant(t: Trial) -> Case:
    t.outbox()
    return Case(
        dict(participant=t.randomized, reason="asked not to be contacted"),
        by=t.alice,
        participant=t.randomized,
        events=[Event("notifications", "update", "cancelled")],
    )


@case("notifications.services.dispatch.notifications_claim_due")
def notifications_claim_due(t: Trial) -> Case:
    row = t.outbox()
    return Case(dict(now=row.due_at), by=None, writes=frozenset({table(Notification)}))


@contextlib.contextmanager
def own_broker() -> Iterator[redis.Redis]:
    """This process's Celery app pointed at a Redis database of this test's own (the cache takes 1-10, the broker
    tests 11-13), emptied before and after."""
    url = purged(broker_url(14))
    try:
        with broker(url):
            yield redis.Redis.from_url(url)
    finally:
        purged(url)


@case("notifications.services.dispatch.enqueue_sends")
def enqueue_sends(t: Trial) -> Case:
    row, token = t.claimed()

    def check(published: int, _events: list[AuditEvent]) -> None:
        assert published == 1
        queued = redis.Redis.from_url(broker_url(14)).lrange("reminders", 0, -1)
        assert len(queued) == 1 and json.loads(queued[0])["headers"]["task"] == "notifications.send_batch"

    return Case(dict(claims=[(row.pk, token)]), by=None, around=own_broker, then=check)


@case("notifications.services.delivery.notifications_send_batch")
def notifications_send_batch(t: Trial) -> Case:
    row, token = t.claimed()

    def check(outcomes: dict[str, int], _events: list[AuditEvent]) -> None:
        assert outcomes == {"sent": 1} and len(mail.outbox) == 1

    return Case(
        dict(claims=[(row.pk, token)]), by=None, at=row.due_at, writes=frozenset({table(Notification)}), then=check
    )


@case("notifications.services.delivery.notification_send")
def notification_send(t: Trial) -> Case:
    row, token = t.claimed()

    def check(outcome: str, _events: list[AuditEvent]) -> None:
        assert outcome == "sent" and len(mail.outbox) == 1

    return Case(
        dict(notification_id=row.pk, claim_token=token),
        by=None,
        at=row.due_at,
        writes=frozenset({table(Notification)}),
        then=check,
    )


@case("notifications.services.delivery.notification_retry")
def notification_retry(t: Trial) -> Case:
    row = t.outbox()
    # As the send path leaves a message whose attempts are exhausted.
    Notification.objects.filter(pk=row.pk).update(status=Notification.Status.FAILED, attempts=3, last_error="refused")
    return Case(
        dict(notification=row, reason="mail server fixed"),
        by=t.alice,
        participant=t.randomized,
        events=[Event("notification", "update", "status"), Event("notification", "update", "attempts")],
    )


@case("notifications.services.links.questionnaire_link_send")
def questionnaire_link_send(t: Trial) -> Case:
    def check(row: Any, _events: list[AuditEvent]) -> None:
        # The outbox row holds ids only: the link is issued when the message is sent.
        assert row.key.startswith(f"link:{row.context['visit_id']}:") and row.status == Notification.Status.PENDING
        assert not ParticipantLink.objects.filter(participant=t.randomized).exists()

    return Case(
        dict(visit=t.visit("BASELINE"), channel="email"),
        by=t.alice,
        participant=t.randomized,
        at=t.in_window("BASELINE"),
        events=[
            Event("notification", "create", "template"),
            Event("notification", "create", "channel"),
            Event("notification", "create", "visit"),
        ],
        then=check,
    )


# --- exports --------------------------------------------------------------------------------------------------------


@case("exports.services.exports.export_open")
def export_open(t: Trial) -> Case:
    participant = t.randomized

    def check(export: Any, _events: list[AuditEvent]) -> None:
        assert participant.participant_id in read_to_the_end(export.chunks).decode()

    return Case(
        dict(dataset="participants", fmt="csv"),
        by=t.statistician,
        events=[Event("export", "export", "export", sensitivity="")],
        then=check,
    )


@case("exports.services.freezes.freeze_create")
def freeze_create(t: Trial) -> Case:
    return Case(dict(label="interim"), by=t.statistician, events=[Event("export_freeze", "export", "freeze")])


@case("exports.services.freezes.freeze_open")
def freeze_open(t: Trial) -> Case:
    freeze = export_services.freeze_create(by=t.statistician, label="interim")

    def check(opened: Any, _events: list[AuditEvent]) -> None:
        assert read_to_the_end(opened[1]).startswith(b"PK")  # the zip

    return Case(
        dict(freeze_id=freeze.pk),
        by=t.statistician,
        events=[Event("export_freeze", "export", "download")],
        then=check,
    )


# --- the tests ------------------------------------------------------------------------------------------------------


@pytest.fixture
def trial(request, tmp_path) -> Iterator[Trial]:
    with time_machine.travel(T0, tick=True):
        yield Trial(request, tmp_path)


def _last_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _summary(events: list[AuditEvent]) -> list[tuple[str, str, str, str]]:
    return [(e.entity_type, e.action, e.field, e.actor_username) for e in events]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_service_writes_its_audit_events(name, trial):
    if name not in CASES:
        pytest.fail(f"new service {name} has no audit case: add one to CASES")
    case = CASES[name](trial)
    audited = name not in NOT_AUDITED
    assert bool(case.events) == audited, f"{name}: a case expects events exactly when the service is audited"
    # The case's actor goes in as the service's ``by`` (the export reads call it ``user``), so the events are checked
    # against who really acted.
    parameters = inspect.signature(REGISTRY[name]).parameters
    actor_kwarg = "by" if "by" in parameters else "user" if "user" in parameters else None
    if actor_kwarg is not None:
        case.kwargs.setdefault(actor_kwarg, case.by)
    marker = _last_id()
    before = table_state() if not audited else {}
    clock = time_machine.travel(case.at, tick=True) if case.at else contextlib.nullcontext()
    around = case.around() if case.around else contextlib.nullcontext()
    with clock, around:
        with transaction.atomic():
            result = REGISTRY[name](**case.kwargs)
        events = list(AuditEvent.objects.filter(id__gt=marker).order_by("id"))
        if case.then:
            case.then(result, events)
    events = list(AuditEvent.objects.filter(id__gt=marker).order_by("id"))

    if not audited:
        assert not events, f"{name} is NOT_AUDITED but wrote {_summary(events)}"
        assert changed_tables(before, table_state()) == sorted(case.writes)
        return
    actor_id = case.by.pk if case.by is not None else None
    actor_username = case.actor_username or (case.by.get_username() if case.by is not None else "system")
    for want in case.events:
        found = [e for e in events if want.matches(e)]
        assert found, f"{name} wrote no {want}; it wrote {_summary(events)}"
        for event in found:
            assert (event.actor_id, event.actor_username) == (actor_id, actor_username), (name, want, _summary(found))
            if case.participant is not None:
                assert (event.participant_id, event.site_code) == (
                    case.participant.participant_id,
                    case.participant.site.code,
                ), (name, want)
    assert verify_chain().ok


def test_every_service_has_a_case():
    missing = [name for name in sorted(REGISTRY) if name not in CASES]
    assert not missing, "\n".join(f"new service {name} has no audit case: add one to CASES" for name in missing)


def test_the_tables_name_only_services_that_exist():
    gone = sorted((set(CASES) | set(NOT_AUDITED)) - set(REGISTRY))
    assert not gone, f"no such service any more (remove it from CASES / NOT_AUDITED): {gone}"


def test_every_not_audited_service_says_why():
    assert all(reason.strip() for reason in NOT_AUDITED.values())
    assert set(NOT_AUDITED) <= set(CASES)


def test_the_registry_holds_the_services_of_every_app():
    # Discovery that silently found nothing would make the table test pass vacuously.
    assert {name.split(".")[0] for name in REGISTRY} == set(APPS)
    assert "participants.services.participants.participant_create" in REGISTRY
    assert not any(name.rsplit(".", 1)[1].startswith("_") for name in REGISTRY)
