"""Every dashboard page, by URL name, and how to reach it in the test world (tests/dashboard/world.py).

The walks (blinding, site scoping, CSRF, accessibility, query counts) take their URLs from here, and
test_pages_registry.py fails when a URL name of dashboard.urls has no entry. Registering a page is one line in PAGES:

    "url-name": Page(lambda w, s: [reverse("url-name", args=[s.alert.pk])], POST, scoped=True, data=lambda w, s: {..}),

- ``urls(world, site)``: the page's URLs for one site's objects (``site`` is a world.SiteObjects); the first is the
  page's plain URL (used where one URL per page is enough, and as the POST target). Query-string variants that matter
  (filters, later pages) follow it. A page that names no object ignores ``site``.
- ``methods``: the HTTP methods the page takes (GET, POST or both).
- ``scoped``: the URL names a site's object (a participant, an alert, ...): another site's staff get a 404.
- ``data(world, site)``: a POST body the page accepts from a user allowed to send it.
- ``more_data(world, site)``: further bodies, where one form does different things (a link by e-mail or shown).
- ``safety``: the page shows a participant's safety data, so a rater of the world's (blinded) study gets a 404.
- ``user``: the walks' persona (a role of ``world.users``) who sends that body: the investigator, who may do every
  action at both sites, except for what only an administrator may (the rooms).

The calendar names its site in the query (``?site=<code>``), so its pages are scoped by that: another site is a 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, reverse

from participants.models import Participant
from tests.dashboard.world import PASSWORD, SiteObjects, World
from tests.support.text_packs import pack_data

GET = ("GET",)
POST = ("POST",)
GET_POST = ("GET", "POST")

# URL names of dashboard.urls that are not staff pages of the registry, and why.
NOT_IN_REGISTRY = {
    "login": "the sign-in page is for anonymous visitors; test_sign_in.py and test_csrf.py cover it, and the browser "
    "tests sign in through it",
    "logout": "ends the session (POST only); test_sign_in.py and the browser tests cover it",
    "login-second-factor": "the code after the password; tests/accounts/test_second_factor.py covers it (the walks "
    "sign in without a second factor, as the demo does)",
    "login-second-factor-setup": "enrolling an authenticator app; tests/accounts/test_second_factor.py covers it",
    "calendar-feed": "a calendar app's URL with its own secret, no session; tests/scheduling/test_ical.py covers it",
    "dashboard-account-token-revoke": "a user's own token, no site's object; tests/test_tokens.py covers it, another "
    "user's token included",
    "dashboard-account-feed-revoke": "writes only once a feed exists; tests/scheduling/test_ical.py covers it",
    "set_language": "Django's own i18n view for visitors before sign-in (a cookie, no data); staff use "
    "dashboard-language",
}


@dataclass(frozen=True)
class Page:
    urls: Callable[[World, SiteObjects], list[str]]
    methods: tuple[str, ...] = GET
    scoped: bool = False
    data: Callable[[World, SiteObjects], dict[str, Any]] = field(default=lambda w, s: {})
    user: str = "investigator"
    more_data: Callable[[World, SiteObjects], list[dict[str, Any]]] = field(default=lambda w, s: [])
    # A page of a participant's safety data (medications, adverse events): a 404 to an independent rater where the
    # study hides safety data from raters (the world's blinded study does), as if the participant did not exist.
    safety: bool = False

    def url(self, world: World, site: SiteObjects) -> str:
        return self.urls(world, site)[0]

    def bodies(self, world: World, site: SiteObjects) -> list[dict[str, Any]]:
        """Every POST body worth sending: ``data`` and the other ways the form is used (``more_data``)."""
        return [self.data(world, site), *self.more_data(world, site)]


def _home(w: World, s: SiteObjects) -> list[str]:
    base = reverse("dashboard-home")
    keys = ("alerts", "today", "closing", "overdue", "reschedule", "questionnaires-due", "questionnaires-overdue",
            "dosing", "failed")  # fmt: skip
    return [base, *(f"{base}?list={key}" for key in keys), *(f"{base}?list={key}&{key}-page=2" for key in keys)]


def _matrix(w: World, s: SiteObjects) -> list[str]:
    """The matrix with every filter the page offers: each site, status and visit (the arm-only visit included: a
    blinded viewer must be refused it without its name), id searches, and the later pages."""
    from scheduling import selectors as scheduling_selectors

    base = f"{reverse('dashboard-matrix')}?study={w.study.code}"
    protocol = scheduling_selectors.study_protocol(w.study.protocol_code)
    assert protocol is not None
    visits = sorted({v.code for arm in protocol.arms.values() for v in arm.visits})
    pages = (2, 3, 99)  # 99: past the last page, which the paginator answers with the last page
    participant = next(iter(s.participants.values()))
    return [
        base,
        *(f"{base}&site={code}" for code in w.sites),
        *(f"{base}&status={status}" for status in Participant.Status.values),
        *(f"{base}&visit={code}" for code in visits),
        f"{base}&q={participant.participant_id}",
        f"{base}&q=NOPE",
        *(f"{base}&page={n}" for n in pages),
        f"{base}&status=randomized&page=2",
    ]


def _calendar(w: World, s: SiteObjects) -> list[str]:
    """The site's calendar this week, the week of its booked session, the weeks before and after this one, and (for
    the first site only, so that the sites' lists stay apart) the calendar without a site: the user's first site."""
    base = reverse("dashboard-calendar")
    site = f"{base}?site={s.site.code}"
    urls = [site, f"{site}&week=2026-03-30", f"{site}&week=2026-02-23", f"{site}&week=2026-03-09"]
    return urls + ([base] if s.site.code == next(iter(w.sites)) else [])


def _on_site(name: str, *args: Any) -> Callable[[World, SiteObjects], list[str]]:
    """A calendar form's URL: the site named in the query, as the calendar's own forms post it."""
    return lambda w, s: [f"{reverse(name, args=[a(s) for a in args])}?site={s.site.code}"]


def _participant_page(name: str, key: str) -> Callable[[World, SiteObjects], list[str]]:
    return lambda w, s: [reverse(name, args=[s.participants[key].participant_id])]


def _event_page(name: str) -> Callable[[World, SiteObjects], list[str]]:
    return lambda w, s: [reverse(name, args=[s.adverse_event.pk])]


def _ae_log(w: World, s: SiteObjects) -> list[str]:
    """The log, with each filter, a participant's events and a later page."""
    base = reverse("dashboard-adverse-events")
    participant = s.adverse_event.participant.participant_id
    return [
        base,
        f"{base}?site={s.site.code}",
        f"{base}?serious=yes&aesi=yes",
        f"{base}?clock=unreviewed",
        f"{base}?clock=overdue",
        f"{base}?participant={participant}",
        f"{base}?page=2",
    ]


def _visit_page(name: str, key: str) -> Callable[[World, SiteObjects], list[str]]:
    return lambda w, s: [reverse(name, args=[s.visits[key].pk])]


# Pages only an investigator at the site may use: other roles get the page's refusal (403).
INVESTIGATORS_ONLY = {"dashboard-adverse-event-review"}


def _site_clock(s: SiteObjects, at: Any, minutes: int) -> str:
    """``at`` plus ``minutes`` as the site's clock shows it, as a datetime-local field sends it."""
    import datetime as dt
    import zoneinfo

    return (
        (at + dt.timedelta(minutes=minutes)).astimezone(zoneinfo.ZoneInfo(s.site.time_zone)).strftime("%Y-%m-%dT%H:%M")
    )


def _guess_visit(s: SiteObjects) -> Any:
    """The primary endpoint visit of one of the site's randomized participants: a guess is asked there, and every
    role sees it (a dosing session is not shown to a blinded role where the arms' schedules differ)."""
    from safety.guess_selectors import endpoint_codes
    from scheduling.models import Visit

    randomized = next(p for p in s.participants.values() if p is not None and p.status == Participant.Status.RANDOMIZED)
    return (
        Visit.objects.filter(participant=randomized, code__in=endpoint_codes(randomized.study)).order_by("id").first()
    )


PAGES: dict[str, Page] = {
    "root": Page(lambda w, s: [reverse("root")]),
    "password_change": Page(
        lambda w, s: [reverse("password_change")],
        GET_POST,
        data=lambda w, s: {
            "old_password": PASSWORD,
            "new_password1": "a much longer new secret 42",
            "new_password2": "a much longer new secret 42",
        },
    ),  # fmt: skip
    "password_change_done": Page(lambda w, s: [reverse("password_change_done")]),
    "dashboard-home": Page(_home),
    "dashboard-matrix": Page(_matrix, GET_POST, data=lambda w, s: {"kind": "name", "text": "Rand"}),
    "dashboard-language": Page(
        lambda w, s: [reverse("dashboard-language")], GET_POST, data=lambda w, s: {"language": "es"}
    ),  # fmt: skip
    "dashboard-alert-acknowledge": Page(
        lambda w, s: [reverse("dashboard-alert-acknowledge", args=[s.alert.pk])],
        POST,
        scoped=True,
        data=lambda w, s: {"note": "Called; safety plan in place."},
    ),  # fmt: skip
    "dashboard-notification-retry": Page(
        lambda w, s: [reverse("dashboard-notification-retry", args=[s.notification.pk])],
        POST,
        scoped=True,
        data=lambda w, s: {"reason": "address corrected"},
    ),  # fmt: skip
    "dashboard-participant": Page(
        lambda w, s: [reverse("dashboard-participant", args=[p.participant_id]) for p in s.all_participants],
        scoped=True,
    ),  # fmt: skip
    "dashboard-participant-new": Page(
        lambda w, s: [reverse("dashboard-participant-new")],
        GET_POST,
        data=lambda w, s: {
            "site": s.site.code,
            "study": w.study.code,
            "full_name": "New Person",
            "email": "new.person@ex.org",
            "phone": "",
            "preferred_channel": "email",
            "time_zone": "",
            "language": "en",
            "stratum": "",
        },
    ),  # fmt: skip
    "dashboard-calendar": Page(_calendar, scoped=True),
    "dashboard-calendar-book": Page(
        _on_site("dashboard-calendar-book"),
        POST,
        scoped=True,
        data=lambda w, s: {
            "visit": s.visits["dosing"].pk,
            "room": s.rooms["in_use"].pk,
            "therapists": s.therapists,
            "start": "2026-04-02T09:00",
            "reason": "",
        },
    ),  # fmt: skip
    "dashboard-calendar-room-create": Page(
        _on_site("dashboard-calendar-room-create"),
        POST,
        scoped=True,
        data=lambda w, s: {"name": "Willow room", "overnight_capable": "on"},
        user="admin",
    ),  # fmt: skip
    "dashboard-calendar-room-retire": Page(
        _on_site("dashboard-calendar-room-retire", lambda s: s.rooms["spare"].pk),
        POST,
        scoped=True,
        data=lambda w, s: {
            f"retire-{s.rooms['spare'].pk}-reason": "turned into an office",
            f"retire-{s.rooms['spare'].pk}-confirm": "on",
        },
        user="admin",
    ),  # fmt: skip
    "dashboard-guesses": Page(
        lambda w, s: [reverse("dashboard-guesses"), f"{reverse('dashboard-guesses')}?study={w.study.code}"]
    ),  # fmt: skip
    "dashboard-participant-guesses": Page(
        lambda w, s: [reverse("dashboard-participant-guesses", args=[_guess_visit(s).participant.participant_id])],
        GET_POST,
        scoped=True,
        data=lambda w, s: {
            "visit": _guess_visit(s).pk,
            "respondent": "participant",
            "guess": "dont_know",
            "confidence": "10",
        },
    ),  # fmt: skip
    "dashboard-instrument-texts": Page(
        lambda w, s: [reverse("dashboard-instrument-texts")],
        GET_POST,
        data=lambda w, s: {"text": json.dumps(pack_data("SCS", "es", version="9.0"))},
        user="admin",
    ),  # fmt: skip
    "dashboard-link-send": Page(
        _visit_page("dashboard-link-send", "link"),
        POST,
        scoped=True,
        data=lambda w, s: {"channel": "email"},
        more_data=lambda w, s: [{"channel": "show"}],
    ),  # fmt: skip
    "dashboard-eligibility": Page(
        _participant_page("dashboard-eligibility", "screening"),
        GET_POST,
        scoped=True,
        data=lambda w, s: {"criterion_INC_AGE": "yes", "criterion_EXC_PREG": "no", "override": "", "reason": ""},
    ),  # fmt: skip
    "dashboard-consent": Page(
        _participant_page("dashboard-consent", "eligible"),
        GET_POST,
        scoped=True,
        data=lambda w, s: {"version": "1.0", "signed_at": "2026-03-05T09:00"},
    ),  # fmt: skip
    "dashboard-enroll": Page(_participant_page("dashboard-enroll", "consented"), GET_POST, scoped=True),
    "dashboard-randomize": Page(
        _participant_page("dashboard-randomize", "enrolled"),
        GET_POST,
        scoped=True,
        data=lambda w, s: {"stratum": "", "confirm": "on"},
    ),  # fmt: skip
    "dashboard-withdraw": Page(
        _participant_page("dashboard-withdraw", "leaving"),
        GET_POST,
        scoped=True,
        data=lambda w, s: {"level": "stop_contact", "date": "2026-03-05", "reason": "moved away", "confirm": "on"},
    ),  # fmt: skip
    "dashboard-demographics": Page(
        _participant_page("dashboard-demographics", "enrolled"),
        GET_POST,
        scoped=True,
        data=lambda w, s: {"field_age_years": "44", "field_race": "6", "field_ethnicity": "2", "reason": ""},
    ),  # fmt: skip
    "dashboard-questionnaire-open": Page(
        lambda w, s: [
            reverse(
                "dashboard-questionnaire-open",
                args=[s.administration.participant.participant_id, s.administration.pk],
            )
        ],
        GET_POST,
        scoped=True,
        data=lambda w, s: {"reason": "the participant asked to start early"},
    ),  # fmt: skip
    "dashboard-response-correct": Page(
        lambda w, s: [
            reverse("dashboard-response-correct", args=[s.response.participant.participant_id, s.response.pk])
        ],
        GET_POST,
        scoped=True,
        data=lambda w, s: {"item": "CSSRS_1", "value": "0", "reason": "misheard on the telephone"},
    ),  # fmt: skip
    "dashboard-visit-schedule": Page(
        _visit_page("dashboard-visit-schedule", "schedule"),
        GET_POST,
        scoped=True,
        data=lambda w, s: {"start": "2026-03-20T10:00", "end": "", "room": "", "reason": ""},
    ),  # fmt: skip
    "dashboard-visit-complete": Page(
        _visit_page("dashboard-visit-complete", "complete"),
        GET_POST,
        scoped=True,
        data=lambda w, s: {"occurred_at": "2026-03-05T09:00", "reason": ""},
    ),  # fmt: skip
    "dashboard-visit-miss": Page(
        _visit_page("dashboard-visit-miss", "miss"),
        GET_POST,
        scoped=True,
        data=lambda w, s: {"reason": "did not come", "confirm": "on"},
    ),  # fmt: skip
    "dashboard-visit-cancel": Page(
        _visit_page("dashboard-visit-cancel", "cancel"),
        GET_POST,
        scoped=True,
        data=lambda w, s: {"reason": "not needed", "confirm": "on"},
    ),  # fmt: skip
    "dashboard-medications": Page(
        lambda w, s: [reverse("dashboard-medications", args=[s.medication.participant.participant_id])],
        GET_POST,
        scoped=True,
        safety=True,
        data=lambda w, s: {
            "name": "sertraline",
            "medication_class": "ssri",
            "dose_amount": "50",
            "dose_unit": "mg",
            "dose_text": "",
            "frequency": "once daily",
            "route": "oral",
            "indication": "",
            "start_date": "2026-01-05",
            "stop_date": "",
            "taper_note": "",
        },
    ),  # fmt: skip
    "dashboard-medication-correct": Page(
        lambda w, s: [
            reverse("dashboard-medication-correct", args=[s.medication.participant.participant_id, s.medication.pk])
        ],
        GET_POST,
        scoped=True,
        safety=True,
        data=lambda w, s: {
            "name": "lorazepam",
            "medication_class": "benzodiazepine",
            "dose_amount": "0.5",
            "dose_unit": "mg",
            "dose_text": "",
            "frequency": "",
            "route": "",
            "indication": "",
            "start_date": "2026-01-10",
            "stop_date": "",
            "taper_note": "",
            "reason": "dose read from the label",
        },
    ),  # fmt: skip
    "dashboard-medication-stop": Page(
        lambda w, s: [
            reverse("dashboard-medication-stop", args=[s.medication.participant.participant_id, s.medication.pk])
        ],
        GET_POST,
        scoped=True,
        safety=True,
        data=lambda w, s: {"stop_date": "2026-03-01", "taper_note": "halved for a week"},
    ),  # fmt: skip
    "dashboard-adverse-events": Page(_ae_log),
    "dashboard-adverse-event-summary": Page(
        lambda w, s: [
            reverse("dashboard-adverse-event-summary"),
            f"{reverse('dashboard-adverse-event-summary')}?study={w.study.code}",
        ]
    ),  # fmt: skip
    "dashboard-adverse-event": Page(_event_page("dashboard-adverse-event"), scoped=True, safety=True),
    "dashboard-adverse-event-new": Page(
        lambda w, s: [reverse("dashboard-adverse-event-new")],
        GET_POST,
        data=lambda w, s: {
            "participant": s.participants["randomized3"].participant_id,
            "verbatim_term": "headache after the session",
            "coded_term_code": "",
            "coded_term_text": "",
            "onset_at": "2026-03-05T09:00",
            "resolved_at": "",
            "severity_grade": "1",
            "relatedness_drug": "possible",
            "relatedness_therapy": "not_related",
            "expectedness": "expected",
            "action_taken": "dose_not_changed",
            "outcome": "recovered",
        },
    ),  # fmt: skip
    "dashboard-adverse-event-correct": Page(
        _event_page("dashboard-adverse-event-correct"),
        GET_POST,
        scoped=True,
        safety=True,
        data=lambda w, s: {
            "verbatim_term": f"fainted in the waiting room at {s.site.code}",
            "coded_term_code": "10042772",
            "coded_term_text": "Syncope",
            "onset_at": "2026-03-02T08:00",
            "resolved_at": "",
            "severity_grade": "2",
            "seriousness": ["serious_hospitalisation"],
            "aesi_categories": ["cardiovascular"],
            "relatedness_drug": "possible",
            "relatedness_therapy": "unlikely",
            "expectedness": "unexpected",
            "action_taken": "dose_not_changed",
            "outcome": "recovering",
            "reason": "grade misread from the notes",
        },
    ),  # fmt: skip
    "dashboard-adverse-event-follow-up": Page(
        _event_page("dashboard-adverse-event-follow-up"),
        GET_POST,
        scoped=True,
        safety=True,
        data=lambda w, s: {"note": "discharged home", "outcome": "recovered", "resolved_at": "2026-03-04T10:00"},
    ),  # fmt: skip
    "dashboard-adverse-event-review": Page(
        _event_page("dashboard-adverse-event-review"),
        GET_POST,
        scoped=True,
        safety=True,
        data=lambda w, s: {"causality_drug": "possible", "causality_therapy": "unlikely", "note": ""},
    ),  # fmt: skip
    "dashboard-dosing-day": Page(
        lambda w, s: [
            reverse("dashboard-dosing-day", args=[s.visits["dosing"].pk]),
            reverse("dashboard-dosing-day", args=[s.visits["booked"].pk]),
            f"{reverse('dashboard-dosing-day', args=[s.visits['booked'].pk])}?timepoint=T60",
            f"{reverse('dashboard-dosing-day', args=[s.visits['booked'].pk])}?correct={s.vital_sign.pk}",
        ],
        GET_POST,
        scoped=True,
        safety=True,
        data=lambda w, s: {
            "kit_identifier": f"KIT-{s.site.code}-NEW",
            "started_at": "2026-03-05T08:00",
            "present_staff": [s.coordinator.username],
            "present_others": "Dana Vale, monitor",
        },
    ),  # fmt: skip
    "dashboard-dosing-doses": Page(
        _visit_page("dashboard-dosing-doses", "booked"),
        POST,
        scoped=True,
        safety=True,
        data=lambda w, s: {
            "initial_dose_mg": "120",
            "initial_dose_at": _site_clock(s, s.dosing_session.started_at, 30),
            "supplemental_dose_mg": "",
            "supplemental_dose_at": "",
            "reason": "",
        },
    ),  # fmt: skip
    "dashboard-dosing-vital": Page(
        _visit_page("dashboard-dosing-vital", "booked"),
        POST,
        scoped=True,
        safety=True,
        data=lambda w, s: {
            "timepoint_code": "T60",
            "measured_at": _site_clock(s, s.dosing_session.started_at, 50),
            "systolic_bp": "130",
            "diastolic_bp": "80",
            "heart_rate": "80",
            "temperature_c": "36.8",
            "note": "",
        },
    ),  # fmt: skip
    "dashboard-dosing-vital-correct": Page(
        lambda w, s: [reverse("dashboard-dosing-vital-correct", args=[s.visits["booked"].pk, s.vital_sign.pk])],
        POST,
        scoped=True,
        safety=True,
        data=lambda w, s: {
            "timepoint_code": "PRE",
            "measured_at": _site_clock(s, s.vital_sign.measured_at, 0),
            "systolic_bp": "122",
            "diastolic_bp": "78",
            "heart_rate": "75",
            "temperature_c": "36.6",
            "note": "",
            "reason": "pulse misread from the monitor",
        },
    ),  # fmt: skip
    "dashboard-dosing-close": Page(
        _visit_page("dashboard-dosing-close", "booked"),
        POST,
        scoped=True,
        safety=True,
        data=lambda w, s: {"ended_at": "", "missing_timepoints_reason": "participant asleep at the later timepoints"},
    ),  # fmt: skip
    "dashboard-dosing-sessions": Page(
        lambda w, s: [reverse("dashboard-dosing-sessions"), f"{reverse('dashboard-dosing-sessions')}?page=2"]
    ),
    "dashboard-overview": Page(
        lambda w, s: [reverse("dashboard-overview"), f"{reverse('dashboard-overview')}?study={w.study.code}"]
    ),
    "dashboard-account": Page(lambda w, s: [reverse("dashboard-account")]),
    "dashboard-account-token-create": Page(
        lambda w, s: [reverse("dashboard-account-token-create")], POST, data=lambda w, s: {"days": "30"}
    ),
    "dashboard-account-feed-create": Page(lambda w, s: [reverse("dashboard-account-feed-create")], POST),
}


def dashboard_url_names() -> set[str]:
    """Every URL name that dashboard.urls defines, includes followed."""
    names: set[str] = set()

    def walk(patterns: list[Any]) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern) and pattern.name:
                names.add(pattern.name)

    walk(get_resolver("dashboard.urls").url_patterns)
    return names


def get_pages() -> dict[str, Page]:
    return {name: page for name, page in PAGES.items() if "GET" in page.methods}


def post_pages() -> dict[str, Page]:
    return {name: page for name, page in PAGES.items() if "POST" in page.methods}


def get_urls(world: World, sites: list[str] | None = None) -> list[tuple[str, str]]:
    """(URL name, URL) for every GET URL of the registry over the given sites' objects (default: all), deduplicated."""
    seen: dict[str, str] = {}
    for name, page in get_pages().items():
        for code in sites or list(world.sites):
            for url in page.urls(world, world.sites[code]):
                seen.setdefault(url, name)
    return [(name, url) for url, name in seen.items()]
