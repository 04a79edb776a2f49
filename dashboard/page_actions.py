"""Which actions the participant page offers its viewer: those their role may take, on records whose status lets
the action happen. Only what the page links is decided here; the services check again (and have the last word).

The role questions are ``participants.access``'s, the status questions the domain's own transition tables
(``participants.transitions``, ``scheduling.lifecycle``); no query is added (roles are read once per request)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assessments.library import shipped_instruments
from assessments.models import Administration
from assessments.selectors import may_correct_response
from assessments.windows import ANSWERABLE, SELF, administration_status
from participants import access
from participants.models import Participant
from participants.transitions import ACTIVE, TRANSITIONS
from scheduling.lifecycle import TRANSITIONS as VISIT_TRANSITIONS
from scheduling.models import Visit
from scheduling.protocol import THERAPY_SESSIONS
from trialsite.roles import SCHEDULE

S = Participant.Status
V = Visit.Status
# Eligibility is answered while screening, and revised (with a reason) until consent.
SCREENING_STATUSES = frozenset({S.SCREENING, S.ELIGIBLE, S.SCREEN_FAILED})


@dataclass
class VisitActions:
    visit: Visit
    schedule: bool = False
    reschedule: bool = False
    complete: bool = False
    miss: bool = False
    cancel: bool = False

    @property
    def any(self) -> bool:
        return self.schedule or self.reschedule or self.complete or self.miss or self.cancel


@dataclass
class QuestionnaireActions:
    administration: Administration
    open_early: bool = False
    correct_response_id: int | None = None

    @property
    def any(self) -> bool:
        return self.open_early or self.correct_response_id is not None


@dataclass
class PageActions:
    eligibility: bool = False
    consent: bool = False
    enroll: bool = False
    randomize: bool = False
    withdraw: bool = False
    demographics: bool = False
    visits: list[VisitActions] = field(default_factory=list)
    questionnaires: list[QuestionnaireActions] = field(default_factory=list)

    @property
    def participant_any(self) -> bool:
        return self.eligibility or self.consent or self.enroll or self.randomize or self.withdraw or self.demographics


def page_actions(
    user: Any, participant: Participant, visits: Sequence[Visit], adms: Sequence[Administration], now: dt.datetime
) -> PageActions:
    site_id = participant.site_id
    manage = access.can_manage(user, site_id)
    schedule = access.has_role(user, site_id, SCHEDULE)
    following = TRANSITIONS.get(participant.status, frozenset())
    out = PageActions(
        eligibility=manage and participant.status in SCREENING_STATUSES,
        consent=manage and participant.status in (ACTIVE | {S.COMPLETED}) - {S.SCREENING},
        enroll=manage and S.ENROLLED in following,
        randomize=manage and S.RANDOMIZED in following,
        withdraw=manage and S.WITHDRAWN in following,
        # Baseline covariates: recorded (or corrected) once the participant has consented.
        demographics=manage and participant.status not in SCREENING_STATUSES,
    )
    for visit in visits:
        allowed = VISIT_TRANSITIONS.get(visit.status, frozenset())
        # A therapist books only therapy sessions (scheduling.services.booking says the rest).
        bookable = schedule and (manage or visit.kind in THERAPY_SESSIONS)
        actions = VisitActions(
            visit=visit,
            schedule=bookable and V.SCHEDULED in allowed and visit.status != V.SCHEDULED,
            reschedule=bookable and V.SCHEDULED in allowed and visit.status == V.SCHEDULED,
            complete=manage and V.COMPLETED in allowed,
            miss=manage and V.MISSED in allowed,
            cancel=manage and V.CANCELLED in allowed,
        )
        if actions.any:
            out.visits.append(actions)
    instruments = shipped_instruments()
    for adm in adms:
        response = getattr(adm, "response", None)
        instrument = instruments.get(adm.instrument_code)
        q_actions = QuestionnaireActions(
            administration=adm,
            open_early=manage
            and adm.respondent == SELF
            and administration_status(adm, now) in ANSWERABLE
            and (adm.opens_at is None or adm.opens_at > now),
            correct_response_id=response.pk
            if response is not None
            and instrument is not None
            and may_correct_response(user, site_id=site_id, entered_by_id=response.entered_by_id, instrument=instrument)
            else None,
        )
        if q_actions.any:
            out.questionnaires.append(q_actions)
    return out
