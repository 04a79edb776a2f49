"""The test world the dashboard walks run over: a double-blind study at two sites (PDX and NYC) whose arm codes, arm
labels and arm-only visit are strings found nowhere else, with participants at each site in several states, visits
done, missed and booked, questionnaires with scores, an open safety alert and a failed message per site; and, for the
action pages, per site: two rooms and two therapists, a dosing session booked, a participant in the state each action
needs, visits to schedule, complete, miss and cancel, a questionnaire opened early (so a link may be sent) and one
still to open, and a stored response to correct.

Everything is made through the real services (as the sites' own staff), so the world is audited like real data. The
protocol is the shipped samati-v1 with its arms and its arm-only visit renamed to those unique strings, stored as a
protocol version of its own (``walk-v1``)."""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import time_machine
from django.db import transaction
from django.utils.html import escape

from assessments import services as assessment_services
from assessments.definitions import visible_items
from assessments.library import instrument_get
from assessments.models import Administration, Response, SafetyAlert
from notifications.models import Notification
from participants import services as participant_services
from participants.models import Participant, Site, Study
from safety import services as safety_services
from safety.models import AdverseEvent, ConcomitantMedication, DosingSession, VitalSign
from scheduling import services as scheduling_services
from scheduling.models import Room, Visit
from scheduling.protocol import shipped_protocol_paths
from tests.conftest import advance
from tests.factories import UserFactory, staff
from trialsite.roles import Role

# Arm codes and labels, as the study stores them and as the protocol names them: unique strings, so that a page
# showing any of them is caught by a plain text search.
ARMS = {"zqarm_swift": "Quorvane", "zqarm_later": "Velmorix"}
PROTOCOL_ARM_LABELS = {"zqarm_swift": "Quorvane course", "zqarm_later": "Velmorix course"}
SHIPPED_ARMS = {"immediate": "zqarm_swift", "delayed": "zqarm_later"}
# The delayed arm's own visit (only one arm has it, so naming it names the arm).
ARM_ONLY_VISIT = ("ZQ_WAITX", "Zqinterval assessment")
PROTOCOL_CODE = "walk-v1"
STUDY_CODE = "WLK"

T0 = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)  # the world is made on Monday 2 March (09:00 in Portland)
NOW = dt.datetime(2026, 3, 5, 20, 0, tzinfo=dt.UTC)  # and walked on Thursday 5 March
HIGH_RISK = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's password


def needles() -> list[str]:
    """Every string that would reveal an arm: the study's arm codes and labels, the protocol's arm labels, and the
    arm-only visit's code and name."""
    return [*ARMS, *ARMS.values(), *PROTOCOL_ARM_LABELS.values(), *ARM_ONLY_VISIT]


ARM_OPTION = re.compile(r"<(\w+)\b[^>]*\sdata-arm-option\b[^>]*>.*?</\1>", re.DOTALL)


def without_arm_options(body: str) -> str:
    """The body less the elements marked ``data-arm-option``: the study's arms offered as the answers of a treatment
    guess (the same list for every participant, so it names no one's arm) and the answers given. The marked element
    holds the option's name alone; everything around it is still scanned."""
    return ARM_OPTION.sub("", body)


def without_own_address(body: str, url: str) -> str:
    """The body less what the viewer typed: the address (the language switch returns there) and its query values (a
    refused filter names the value refused). A viewer who typed an arm-only visit's code reads it back, and learns
    nothing from that."""
    body = body.replace(escape(url), "").replace(url, "")
    for values in parse_qs(urlsplit(url).query).values():
        for value in values:
            body = body.replace(escape(value), "").replace(value, "")
    return body


def hits(body: str) -> list[str]:
    low = body.lower()
    return [n for n in needles() if n.lower() in low]


@dataclass
class SiteObjects:
    """One site's objects in the world: its participants by state, its open alert and failed message, and what the
    action pages act on: visits by the action they await, rooms, therapists, a questionnaire and a response."""

    site: Site
    coordinator: object
    participants: dict[str, Participant] = field(default_factory=dict)
    alert: SafetyAlert | None = None
    notification: Notification | None = None
    # "schedule", "complete", "miss", "cancel": a visit awaiting that action; "link": a visit with a questionnaire
    # open now; "dosing": a dosing visit to book on the calendar; "booked": the dosing session already booked.
    visits: dict[str, Visit] = field(default_factory=dict)
    rooms: dict[str, Room] = field(default_factory=dict)  # "in_use" (holds the booked session), "spare"
    therapists: list[str] = field(default_factory=list)
    administration: Administration | None = None  # a questionnaire still to open (to open early)
    response: Response | None = None  # a stored staff-entered response (to correct)
    medication: ConcomitantMedication | None = (
        None  # an ongoing medication of the booked participant (to correct, stop)
    )
    adverse_event: AdverseEvent | None = None  # a serious adverse event, not yet reviewed (to correct, follow, review)
    # The booked visit's dosing session, opened with a kit and one vital sign at its first timepoint (the dosing-day
    # screen records, corrects and closes it).
    dosing_session: DosingSession | None = None
    vital_sign: VitalSign | None = None

    @property
    def all_participants(self) -> list[Participant]:
        return list(self.participants.values())


@dataclass
class World:
    study: Study
    sites: dict[str, SiteObjects]
    users: dict[str, object]  # walk personas by role, each holding that role at both sites

    def participants(self) -> list[Participant]:
        return [p for objects in self.sites.values() for p in objects.all_participants]


def _walk_protocol() -> Path:
    path = next(p for p in shipped_protocol_paths() if p.stem == "samati-v1")
    text = path.read_text(encoding="utf-8")
    text = text.replace('"WAIT_END"', f'"{ARM_ONLY_VISIT[0]}"').replace("visit:WAIT_END", f"visit:{ARM_ONLY_VISIT[0]}")
    data = json.loads(text)
    data["code"] = PROTOCOL_CODE
    data["title"] = "Walk protocol (test)"
    data["note"] = "Test protocol."
    data["arms"] = {SHIPPED_ARMS[code]: arm for code, arm in data["arms"].items()}
    for timepoint in data["blinded_schedule"]["timepoints"]:
        timepoint["visits"] = {SHIPPED_ARMS[code]: visit for code, visit in timepoint["visits"].items()}
    for code, arm in data["arms"].items():
        arm["label"] = PROTOCOL_ARM_LABELS[code]
        for visit in arm["visits"]:
            if visit["code"] == ARM_ONLY_VISIT[0]:
                visit["name"] = ARM_ONLY_VISIT[1]
    out = Path(tempfile.mkdtemp(prefix="walk-protocol-")) / f"{PROTOCOL_CODE}.json"
    out.write_text(json.dumps(data), encoding="utf-8")
    return out


def walk_study(site_codes: tuple[str, ...] = ("PDX", "NYC"), per_stratum: int = 40) -> tuple[Study, dict[str, Site]]:
    """The double-blind study with the unique arms, joined by the sites (made if missing)."""
    from tests.factories import build_study

    admin = UserFactory(username="system-admin", is_superuser=True)
    with transaction.atomic():
        scheduling_services.protocol_version_load(path=_walk_protocol(), by=None)
        study = participant_services.study_create(
            code=STUDY_CODE, title="Walk study (test)", protocol_code=PROTOCOL_CODE, blinded=True, by=None
        )
        for code, label in ARMS.items():
            participant_services.arm_create(study=study, code=code, label=label, by=None)
    # build_study finds the study by code and adds criteria, consent, sites and the allocation list.
    study, sites = build_study(
        code=STUDY_CODE, arms=tuple(ARMS), site_codes=site_codes, per_stratum=per_stratum, protocol_code=PROTOCOL_CODE
    )
    assert admin.is_superuser
    return study, sites


def complete_answers(code: str) -> dict:
    """Complete answers to an instrument: the first value of every item shown (item codes and values only)."""
    instrument = instrument_get(code)
    answers = {item.code: item.values[0] for item in instrument.items}
    shown = {item.code for item in visible_items(instrument, answers)}
    return {k: v for k, v in answers.items() if k in shown}


def _visit(participant: Participant, code: str) -> Visit:
    return Visit.objects.select_related("participant__site").get(participant=participant, code=code)


def _site_participants(study: Study, objects: SiteObjects, rater) -> None:
    site, by = objects.site, objects.coordinator
    zone = zoneinfo.ZoneInfo(site.time_zone)
    made = objects.participants
    for state in ("screening", "eligible", "consented", "enrolled"):
        with transaction.atomic():
            p = participant_services.participant_create(
                study=study,
                site=site,
                by=by,
                contact={"full_name": f"{state.title()} {site.code}", "email": f"{state}.{site.code.lower()}@ex.org"},
            )
        made[state] = advance(p, state, by=by)
    for n in (1, 2, 3, 4):
        with transaction.atomic():
            p = participant_services.participant_create(
                study=study,
                site=site,
                by=by,
                contact={"full_name": f"Rand {n} {site.code}", "email": f"rand{n}.{site.code.lower()}@ex.org"},
            )
        made[f"randomized{n}"] = advance(p, "randomized", by=by)
    done, missed, withdrawn = made["randomized1"], made["randomized2"], made["randomized4"]
    with transaction.atomic():
        scheduling_services.visit_complete(
            visit=_visit(done, "SCREEN"), occurred_at=dt.datetime(2026, 3, 2, 8, 30, tzinfo=zone), by=by
        )
        assessment_services.response_create_staff(
            participant=done, visit=_visit(done, "SCREEN"), instrument_code="LSAS", answers=complete_answers("LSAS"),
            by=rater,
        )  # fmt: skip
        assessment_services.response_create_staff(
            participant=done, visit=_visit(done, "SCREEN"), instrument_code="CSSRS_SCREEN", answers=HIGH_RISK, by=by
        )
        scheduling_services.visit_schedule(
            visit=_visit(done, "BASELINE"), start=dt.datetime(2026, 3, 16, 10, 0, tzinfo=zone), by=by
        )
        scheduling_services.visit_miss(visit=_visit(missed, "SCREEN"), reason="did not come", by=by)
        participant_services.participant_withdraw(
            participant=withdrawn, level="stop_follow_up", reason="moved away", date=dt.date(2026, 3, 2), by=by
        )
    made["randomized4"] = Participant.objects.get(pk=withdrawn.pk)
    with transaction.atomic():
        p = participant_services.participant_create(
            study=study,
            site=site,
            by=by,
            contact={"full_name": f"Leaving {site.code}", "email": f"leave.{site.code.lower()}@ex.org"},
        )
    made["leaving"] = p  # to withdraw
    objects.alert = SafetyAlert.objects.filter(participant=done).latest("id")
    # A message as delivery leaves it after its last attempt (delivery itself is the notifications tests' concern).
    objects.notification = Notification.objects.create(
        key=f"walk:{done.pk}",
        participant=done,
        recipient_kind="participant",
        channel="email",
        template="visit_reminder",
        nominal_at=T0,
        due_at=T0,
        status=Notification.Status.FAILED,
        attempts=5,
        last_error="550 mailbox unavailable",
    )


def _site_actions(objects: SiteObjects, therapists: list[str]) -> None:
    """What the action pages act on at one site (see SiteObjects), made through the services by the site's own staff
    (the rooms by the system, as configuration is)."""
    site, by = objects.site, objects.coordinator
    zone = zoneinfo.ZoneInfo(site.time_zone)
    done, missed, fresh = (objects.participants[f"randomized{n}"] for n in (1, 2, 3))
    objects.therapists = therapists
    with transaction.atomic():
        for key, name in (("in_use", "Zephyr room"), ("spare", "Spare room")):
            objects.rooms[key] = scheduling_services.room_create(site=site, name=name, by=None)
        # A dosing session in the week of 30 March, so the calendar has one to show (on another day at each site: the
        # walks' therapist works at both).
        day = 30 if site.code == "PDX" else 31
        scheduling_services.visit_schedule(
            visit=_visit(done, "DOSE1"),
            start=dt.datetime(2026, 3, day, 9, 0, tzinfo=zone),
            room=objects.rooms["in_use"],
            staff=therapists,
            by=by,
        )
        objects.medication = safety_services.medication_record(
            participant=done,
            name="lorazepam",
            medication_class="benzodiazepine",
            dose_amount=1,
            dose_unit="mg",
            start_date=dt.date(2026, 1, 10),
            by=by,
        )
        # The baseline's self-report opened early: the visit has a questionnaire to answer now, so a link may go out.
        baseline = _visit(done, "BASELINE")
        assessment_services.administration_open_early(
            administration=Administration.objects.get(visit=baseline, instrument_code="LSAS_SR"), by=by, reason="asked"
        )
    objects.visits = {
        "booked": _visit(done, "DOSE1"),
        "link": baseline,
        "dosing": _visit(fresh, "DOSE1"),
        "schedule": _visit(fresh, "BASELINE"),
        "complete": _visit(fresh, "SCREEN"),
        "miss": _visit(missed, "BASELINE"),
        "cancel": _visit(fresh, "PREP1"),
    }
    objects.administration = Administration.objects.get(visit=baseline, instrument_code="SCS")
    with transaction.atomic():
        objects.dosing_session = open_dosing_session(objects.visits["booked"], by=by, kit=f"KIT-{site.code}-ZQ7731")
        objects.vital_sign = objects.dosing_session.vital_signs.get()
    objects.response = Response.objects.get(participant=done, instrument_code="CSSRS_SCREEN")
    with transaction.atomic():
        objects.adverse_event = safety_services.adverse_event_record(
            participant=done,
            verbatim_term=f"fainted in the waiting room at {site.code}",
            coded_term_code="10042772",
            coded_term_text="Syncope",
            onset_at=dt.datetime(2026, 3, 2, 8, 0, tzinfo=zone),
            severity_grade=3,
            relatedness_drug="possible",
            relatedness_therapy="unlikely",
            expectedness="unexpected",
            action_taken="dose_not_changed",
            outcome="recovering",
            seriousness=frozenset({"serious_hospitalisation"}),
            aesi_categories=["cardiovascular"],
            by=by,
        )


def open_dosing_session(visit: Visit, *, by, kit: str) -> DosingSession:
    """The visit's dosing session opened an hour ago (the site's clock) with a kit and its first declared timepoint's
    vital signs (all under the thresholds: no alert)."""
    from django.utils import timezone

    zone = zoneinfo.ZoneInfo(visit.participant.site.time_zone)
    now = timezone.now().astimezone(zone).replace(second=0, microsecond=0)
    session = safety_services.dosing_session_open(
        visit=visit, kit_identifier=kit, started_at=now - dt.timedelta(hours=1), by=by
    )
    safety_services.vital_sign_record(
        session=session, timepoint_code="PRE", measured_at=now - dt.timedelta(minutes=50), systolic_bp=122,
        diastolic_bp=78, heart_rate=72, temperature_c="36.6", by=by,
    )  # fmt: skip
    return session


def build_world() -> World:
    with time_machine.travel(T0, tick=False):
        study, sites = walk_study()
        users = {role.value: staff(f"walk-{role.value}", role, *sites.values()) for role in Role}
        coordinators = {"PDX": staff("alice", Role.COORDINATOR, sites["PDX"]), "NYC": staff("bob", Role.COORDINATOR, sites["NYC"])}  # fmt: skip
        objects = {code: SiteObjects(site=site, coordinator=coordinators[code]) for code, site in sites.items()}
        for code in objects:
            _site_participants(study, objects[code], users[Role.RATER])
            # Dosing sessions take two therapists: the walks' one (at both sites) and one of the site's own.
            own = staff(f"tara-{code.lower()}", Role.THERAPIST, sites[code])
            _site_actions(objects[code], [users[Role.THERAPIST].username, own.username])
    return World(study=study, sites=objects, users=users)


def hidden_from(user, url: str, data: dict | None = None) -> bool:
    """Does ``url`` (or the form ``data`` posted to it) name a visit the user's blinded view of the schedule does not
    show (``scheduling.blinded_view``)? Its pages then answer 404, as for a visit of another site."""
    from scheduling.blinded_view import HIDDEN, Lens

    ids = [int(a or b) for a, b in re.findall(r"/visits/(\d+)/|[?&]visit=(\d+)", url)]
    if data and str(data.get("visit", "")).isdigit():
        ids.append(int(data["visit"]))
    if not ids:
        return False
    lens = Lens(user)
    visits = Visit.objects.filter(pk__in=ids).select_related("participant__study", "protocol_version")
    return any(lens.face(v) is HIDDEN for v in visits)
