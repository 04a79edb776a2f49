"""The home page's worklists: each is a selector of the app that owns the data, read for the user's sites and each
site's own "today". The page shows every list's count and one list open at a time (``?list=<key>``; by default the
first list, in the page's order, that holds anything), paginated on its own (``?<key>-page=N``). A coordinator works
one list at a time, and the page reads the rows of that list only.

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
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from assessments import selectors as assessment_selectors
from notifications import selectors as notification_selectors
from participants import selectors as participant_selectors
from participants.access import Actor
from scheduling import selectors as scheduling_selectors
from scheduling.blinded_view import Lens

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
    count: int
    query: QueryDict
    # The open list's page; the other lists show their count and a link that opens them.
    page: Page[Any] | None = None

    @property
    def url(self) -> str:
        """The link that opens this list."""
        return f"?list={self.key}#{self.key}"

    def _url(self, number: int) -> str:
        query = self.query.copy()
        query["list"] = self.key
        query[f"{self.key}-page"] = str(number)
        return f"?{query.urlencode()}#{self.key}"

    @property
    def previous_url(self) -> str | None:
        page = self.page
        return self._url(page.previous_page_number()) if page is not None and page.has_previous() else None

    @property
    def next_url(self) -> str | None:
        page = self.page
        return self._url(page.next_page_number()) if page is not None and page.has_next() else None


class _CountedPaginator(Paginator):
    """A paginator told the count already read for the list's tab, so that it does not count again."""

    def __init__(self, object_list: Any, per_page: int, count: int) -> None:
        super().__init__(object_list, per_page)
        self.__dict__["count"] = count  # Paginator.count is a cached property


# What a visit row shows (dashboard/worklist_rows.py), and what the row's ordering and scoping read.
ROW_FIELDS = (
    "id", "code", "name", "kind", "status", "target_date", "window_start", "window_end", "scheduled_start",
    "scheduled_end", "needs_reschedule", "participant__id", "participant__participant_id", "site__id", "site__code",
    "site__time_zone", "study_id", "room__id", "room__name",
    # What the blinded view reads to show a row under its neutral name (scheduling.blinded_view.Lens.present).
    "unscheduled", "protocol_version_id", "dosing_number", "instruments", "duration_minutes", "staff_required",
    "overnight", "optional", "occurred_at",
)  # fmt: skip


def _count(qs: QuerySet[Any] | list[int]) -> int:
    """A list's count. Each list's conditions are on the visit's own columns (its site and study are copied onto
    it), so the count is read from an index without joining the rows."""
    return len(qs) if isinstance(qs, list) else qs.count()


def _paged(key: str, qs: QuerySet[Any] | list[int], count: int, query: QueryDict) -> Page[Any]:
    """The open list's page asked for, as ``Paginator.get_page`` gives it (a page past the end is the last page)."""
    return _CountedPaginator(qs, PAGE_SIZE, count).get_page(query.get(f"{key}-page"))


def open_key(keys: list[str], counts: dict[str, int], asked: str | None) -> str:
    """The list to open: the one asked for, else the first that holds anything, else the first."""
    if asked in counts:
        return asked
    return next((key for key in keys if counts[key]), keys[0])


def home_worklists(user: Actor, now: dt.datetime, query: QueryDict) -> list[Worklist]:
    days = scheduling_selectors.site_days(user, now)
    # Visits a blinded viewer's lists do not hold (scheduling.blinded_view: an arm's own visit, or one whose date would
    # tell the arm) are left out of every visit list: which they are is read once for all the lists. The rows carry
    # what the blinded view reads to show each visit under its neutral name.
    lens = Lens(user)
    hidden = lens.not_listed()

    def hide(user: Actor, qs: QuerySet[Any]) -> QuerySet[Any]:
        return lens.annotate(scheduling_selectors.without_arm_only_visits(user, qs, hidden))

    def lean(qs: QuerySet[Any]) -> QuerySet[Any]:
        # A row shows the visit, its participant, site and room: the study and the protocol version the selectors
        # join for other pages are left out (fewer joins over every row the list's count reads).
        # Only the columns a row shows are read: the rows are sorted and counted whole, so narrow rows are cheaper.
        return qs.select_related(None).defer(None).select_related("participant", "site", "room").only(*ROW_FIELDS)

    def unstaffed(qs: QuerySet[Any]) -> QuerySet[Any]:
        # Only the dosing list shows who is booked: the others skip reading the staff (a query each).
        return lean(qs).prefetch_related(None)

    # The two questionnaire lists, as ids in list order, from one query; the rows of their pages are read below.
    due, late = scheduling_selectors.visits_with_questionnaires(
        user,
        days,
        visit_ids=assessment_selectors.visit_ids_with_answerable_self_reports(now),
        asked=assessment_selectors.still_asked("participant__"),
        hidden=hidden,
    )
    sources: list[tuple[str, str | Promise, str | Promise, str, QuerySet[Any] | list[int]]] = [
        ("alerts", _("Open safety alerts"), _("No open safety alerts."), "alert",
         assessment_selectors.safety_alerts_listed(user, open_only=True)),
        ("today", _("Visits today"), _("No visits booked today."), "visit",
         unstaffed(hide(user, scheduling_selectors.visits_today(user, days)))),
        ("closing", _("Windows closing within 3 days"), _("No visit window closes in the next 3 days."), "visit",
         unstaffed(hide(user, scheduling_selectors.visits_window_closing(user, days, CLOSING_WITHIN_DAYS)))),
        ("overdue", _("Overdue visits"), _("No overdue visits."), "visit",
         unstaffed(hide(user, scheduling_selectors.visits_overdue(user, days)))),
        ("reschedule", _("Visits that need rescheduling"), _("No visit needs rescheduling."), "visit",
         unstaffed(lens.annotate(scheduling_selectors.visits_needing_reschedule(user, days, hidden=hidden)))),
        ("questionnaires-due", _("Questionnaires due"), _("No questionnaires due."), "questionnaire", due),
        ("questionnaires-overdue", _("Questionnaires overdue"), _("No questionnaires overdue."), "questionnaire", late),
        ("dosing", _("Dosing sessions in the next 14 days"), _("No dosing sessions booked in the next 14 days."),
         "dosing", lean(hide(user, scheduling_selectors.dosing_sessions_ahead(user, days, DOSING_AHEAD_DAYS)))),
        ("failed", _("Failed notifications"), _("No failed notifications."), "notification",
         notification_selectors.notifications_failed(user)),
    ]  # fmt: skip
    counts = {key: _count(qs) for key, _title, _empty, _kind, qs in sources}
    opened = open_key([source[0] for source in sources], counts, query.get("list"))
    lists = [
        Worklist(
            key=key,
            title=title,
            empty=empty,
            kind=kind,
            count=counts[key],
            query=query,
            page=_paged(key, qs, counts[key], query) if key == opened else None,
        )
        for key, title, empty, kind, qs in sources
    ]
    shown = next(wl for wl in lists if wl.page is not None)
    if shown.kind == "questionnaire" and shown.page is not None:
        _fill_questionnaire_page(shown.page, lambda qs: unstaffed(lens.annotate(qs)))
    if shown.kind in ("visit", "dosing", "questionnaire") and shown.page is not None and lens.any_blinded():
        shown.page.object_list = lens.present(shown.page.object_list)
    return lists


def list_url(key: str) -> str:
    """The home page with the list ``key`` open."""
    return f"{reverse('dashboard-home')}?list={key}"


def _fill_questionnaire_page(page: Any, unstaffed: Any) -> None:
    """A questionnaire list is paged as ids: the page's visits are read in one query, in the page's order, with
    whether the participant has an e-mail address (the link goes by e-mail, else by SMS), read for the rows shown
    only."""
    ids = list(page.object_list)
    if not ids:
        return
    visits = {v.pk: v for v in unstaffed(scheduling_selectors.visits_listed_by_ids(ids))}
    with_email = participant_selectors.participant_pks_with_email({v.participant_id for v in visits.values()})
    for visit in visits.values():
        visit.has_email = visit.participant_id in with_email
    page.object_list = [visits[pk] for pk in ids if pk in visits]
