"""The home page's worklists: each is a selector of the app that owns the data, read for the user's sites and each
site's own "today", paginated on its own (``?<key>-page=N``).

The two questionnaire lists hold visits whose self-report questionnaires the participant can answer now (open, not
completed, window not closed, ``assessments.windows.is_open``): "due" while the visit's target date is the site's
today or later, "overdue" once it has passed. A questionnaire whose window has closed can no longer be answered or
sent, so it leaves both lists (the record status matrix shows it as out of window)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from assessments import selectors as assessment_selectors
from notifications import selectors as notification_selectors
from participants import selectors as participant_selectors
from participants.access import Actor
from scheduling import selectors as scheduling_selectors

PAGE_SIZE = 20
# A visit window closing within this many days of the site's today is listed as closing.
CLOSING_WITHIN_DAYS = 3
# Dosing sessions booked from today up to this many days ahead.
DOSING_AHEAD_DAYS = 14


@dataclass(frozen=True)
class Worklist:
    key: str
    title: str | Promise
    empty: str | Promise
    kind: str
    page: Page[Any]
    query: QueryDict

    @property
    def count(self) -> int:
        return self.page.paginator.count

    def _url(self, number: int) -> str:
        query = self.query.copy()
        query[f"{self.key}-page"] = str(number)
        return f"?{query.urlencode()}#{self.key}"

    @property
    def previous_url(self) -> str | None:
        return self._url(self.page.previous_page_number()) if self.page.has_previous() else None

    @property
    def next_url(self) -> str | None:
        return self._url(self.page.next_page_number()) if self.page.has_next() else None


def _paged(key: str, qs: QuerySet[Any], query: QueryDict) -> Page[Any]:
    return Paginator(qs, PAGE_SIZE).get_page(query.get(f"{key}-page"))


def home_worklists(user: Actor, now: dt.datetime, query: QueryDict) -> list[Worklist]:
    days = scheduling_selectors.site_days(user, now)
    # Visits a blinded viewer may not see (an arm's own visit tells the arm) are left out of every visit list.
    hide = scheduling_selectors.without_arm_only_visits
    open_questionnaires = assessment_selectors.visit_ids_with_answerable_self_reports(now)
    with_email = participant_selectors.participant_pks_with_email()
    sources: list[tuple[str, str | Promise, str | Promise, str, QuerySet[Any]]] = [
        ("alerts", _("Open safety alerts"), _("No open safety alerts."), "alert",
         assessment_selectors.safety_alerts_listed(user, open_only=True)),
        ("today", _("Visits today"), _("No visits booked today."), "visit",
         hide(user, scheduling_selectors.visits_today(user, days))),
        ("closing", _("Windows closing within 3 days"), _("No visit window closes in the next 3 days."), "visit",
         hide(user, scheduling_selectors.visits_window_closing(user, days, CLOSING_WITHIN_DAYS))),
        ("overdue", _("Overdue visits"), _("No overdue visits."), "visit",
         hide(user, scheduling_selectors.visits_overdue(user, days))),
        ("reschedule", _("Visits that need rescheduling"), _("No visit needs rescheduling."), "visit",
         scheduling_selectors.visits_needing_reschedule(user, days)),
        ("questionnaires-due", _("Questionnaires due"), _("No questionnaires due."), "questionnaire",
         scheduling_selectors.visits_with_questionnaires(
             user, days, visit_ids=open_questionnaires, late=False, email_pks=with_email)),
        ("questionnaires-overdue", _("Questionnaires overdue"), _("No questionnaires overdue."), "questionnaire",
         scheduling_selectors.visits_with_questionnaires(
             user, days, visit_ids=open_questionnaires, late=True, email_pks=with_email)),
        ("dosing", _("Dosing sessions in the next 14 days"), _("No dosing sessions booked in the next 14 days."),
         "dosing", hide(user, scheduling_selectors.dosing_sessions_ahead(user, days, DOSING_AHEAD_DAYS))),
        ("failed", _("Failed notifications"), _("No failed notifications."), "notification",
         notification_selectors.notifications_failed(user)),
    ]  # fmt: skip
    return [
        Worklist(key=key, title=title, empty=empty, kind=kind, page=_paged(key, qs, query), query=query)
        for key, title, empty, kind, qs in sources
    ]
