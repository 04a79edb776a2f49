"""The adverse-event pages: the log (the user's sites' events, filtered and paged), an event's page with its history,
the forms to record, correct, follow up and review an event, and the summary per AESI category (per arm only for a
viewer who may see the allocation).

Reads go through ``safety.selectors`` (site scope and the raters' blinding: an event hidden from a rater is a 404 and
absent from the log) and writes through ``safety.services``; the forms reuse the participant actions' page and flow
(dashboard.actions). No page here reads the allocation except the summary, through its selector, for a viewer who
may see it.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from audit import selectors as audit_selectors
from dashboard import adverse_event_forms as ae_forms
from dashboard.actions import Action, _data, _refusal, _run
from dashboard.charts import coord
from dashboard.views import chosen_study, staff_page
from participants import access
from participants import selectors as participant_selectors
from participants.models import Participant
from safety import selectors, services
from safety.models import AdverseEvent
from trialsite.errors import PermissionDeniedError, ServiceError
from trialsite.roles import MANAGE, Role

PAGE_SIZE = 25
RECORDERS = MANAGE | {Role.THERAPIST}  # as safety.services: who records, corrects and follows up


def _zone(site: Any) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(site.time_zone)


def _aesi_choices(study_code: str) -> list[tuple[str, str]]:
    return [(c.code, c.label) for c in selectors.aesi_list_of_study(study_code).categories]


def event_url(event: AdverseEvent) -> str:
    return reverse("dashboard-adverse-event", args=[event.pk])


def _require_recorder(user: Any, site_id: int) -> None:
    access.require_role(user, site_id, RECORDERS, "record adverse events")


# --- the log ---------------------------------------------------------------------------------------------------------


@staff_page
@require_GET
def log(request: HttpRequest) -> HttpResponse:
    user = request.user
    sites = list(participant_selectors.sites_for(user))
    form = ae_forms.LogFilterForm(request.GET or None, sites=[s.code for s in sites])
    events = selectors.adverse_events_for(user)
    status = 200
    if form.is_bound and not form.is_valid():
        status, events = 400, events.none()
    elif form.is_bound:
        values = form.cleaned_data
        if values["site"]:
            events = events.filter(participant__site__code=values["site"])
        if values["participant"]:
            events = events.filter(participant__participant_id=values["participant"].strip())
        if values["serious"] == "yes":
            events = events.filter(serious=True)
        if values["aesi"] == "yes":
            events = events.exclude(aesi_categories=[])
        if values["clock"] == "unreviewed":
            events = events.filter(reviewed_at__isnull=True)
        elif values["clock"] == "overdue":
            events = events.filter(reviewed_at__isnull=True, reporting_due_at__lt=timezone.now())
    paginator = Paginator(events.order_by("-onset_at", "-id"), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "events": list(page.object_list),
        "query": query.urlencode(),
        "now": timezone.now(),
        "may_record": bool(access.site_ids_with(user, RECORDERS)),
    }
    return render(request, "dashboard/adverse_events/log.html", context, status=status)


# --- an event's page -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    at: Any
    kind: str  # "recorded", "follow_up", "review", "correction"
    who: str
    lines: tuple[str, ...]


def history_of(event: AdverseEvent) -> list[HistoryEntry]:
    """What happened to the event, oldest first: its entry, follow-ups, reviews and every audited change of its own
    values (corrections with their reason; the outcome a follow-up set; the clock a review stopped)."""
    entries = [
        HistoryEntry(
            event.recorded_at, "recorded", event.recorded_by.username if event.recorded_by else "", (_("Recorded"),)
        )
    ]
    for fu in event.follow_ups.all():
        lines = [fu.note]
        if fu.outcome:
            lines.append(_("Outcome: %(outcome)s") % {"outcome": fu.get_outcome_display()})
        entries.append(
            HistoryEntry(fu.recorded_at, "follow_up", fu.recorded_by.username if fu.recorded_by else "", tuple(lines))
        )
    for review in event.reviews.all():
        lines = [
            _("Causality, study drug: %(value)s") % {"value": review.get_causality_drug_display()},
            _("Causality, therapy: %(value)s") % {"value": review.get_causality_therapy_display()},
        ]
        if review.note:
            lines.append(review.note)
        entries.append(HistoryEntry(review.reviewed_at, "review", review.reviewed_by.username, tuple(lines)))
    for change in audit_selectors.record_corrections("adverse_event", event.pk):
        line = _("%(field)s: %(old)s → %(new)s") % {
            "field": change.field,
            "old": "—" if change.old_value in (None, "", []) else change.old_value,
            "new": "—" if change.new_value in (None, "", []) else change.new_value,
        }
        said: tuple[str, ...] = (
            (line, _("Reason: %(reason)s") % {"reason": change.reason}) if change.reason else (line,)
        )
        entries.append(HistoryEntry(change.occurred_at, "correction", change.actor_username, said))
    return sorted(entries, key=lambda e: e.at)


@staff_page
@require_GET
def detail(request: HttpRequest, event_id: int) -> HttpResponse:
    user = request.user
    event = selectors.adverse_event_get(user, event_id)
    site_id = event.participant.site_id
    aesi = dict(_aesi_choices(event.participant.study.code))
    context = {
        "event": event,
        "zone": event.participant.site.time_zone,
        "criteria": [ae_forms.CRITERIA_LABELS[n] for n in ae_forms.SERIOUSNESS_CRITERIA if getattr(event, n)],
        "aesi": [aesi.get(code, code) for code in event.aesi_categories],
        "history": history_of(event),
        "may_record": access.has_role(user, site_id, RECORDERS),
        "may_review": access.has_role(user, site_id, {Role.INVESTIGATOR}),
        "overdue": event.reviewed_at is None
        and event.reporting_due_at is not None
        and event.reporting_due_at < timezone.now(),
    }
    return render(request, "dashboard/adverse_events/detail.html", context)


# --- the forms -------------------------------------------------------------------------------------------------------


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def record(request: HttpRequest) -> HttpResponse:
    """Record an event. The participant comes from ``?participant=`` (a link from their page) or is typed; their
    site's clock reads the times."""
    user = request.user
    typed = (request.POST.get("participant") if request.method == "POST" else request.GET.get("participant")) or ""
    participant: Participant | None = None
    if typed.strip():
        participant = participant_selectors.participants_for(user).filter(participant_id=typed.strip()).first()
    sites = list(participant_selectors.sites_for(user))
    site = participant.site if participant is not None else (sites[0] if sites else None)
    study_code = participant.study.code if participant is not None else _first_study_code(user)
    form = ae_forms.AdverseEventForm(
        _data(request),
        zone=_zone(site) if site is not None else zoneinfo.ZoneInfo("UTC"),
        aesi=_aesi_choices(study_code) if study_code else [],
        with_participant=True,
        initial={"participant": typed.strip()},
    )
    action = Action(
        title=_("Record an adverse event"),
        submit=_("Record the event"),
        back=reverse("dashboard-adverse-events"),
        about=_("A serious event or one of special interest alerts the site's investigators when you save it."),
    )
    refused: ServiceError | None = None
    if not access.site_ids_with(user, RECORDERS):
        refused = PermissionDeniedError("your role cannot record adverse events")
    elif participant is not None:
        refused = _refusal(lambda: _require_recorder(user, participant.site_id))

    def perform(values: dict[str, Any]) -> str:
        if participant is None:
            raise ServiceError(
                "unknown participant", field_errors={"participant": [_("No such participant at your sites.")]}
            )
        event = services.adverse_event_record(participant=participant, by=user, **form.event_values())
        action.back = event_url(event)
        return _("Adverse event recorded for %(id)s.") % {"id": participant.participant_id}

    return _run(request, action, form, perform, field_for=form.field_for, refused=refused)


def _first_study_code(user: Any) -> str | None:
    study = participant_selectors.studies_for(user).first()
    return study.code if study is not None else None


def _event_action(request: HttpRequest, event_id: int) -> tuple[AdverseEvent, zoneinfo.ZoneInfo]:
    event = selectors.adverse_event_get(request.user, event_id)
    return event, _zone(event.participant.site)


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def correct(request: HttpRequest, event_id: int) -> HttpResponse:
    user = request.user
    event, zone = _event_action(request, event_id)
    form = ae_forms.AdverseEventForm(
        _data(request),
        zone=zone,
        aesi=_aesi_choices(event.participant.study.code),
        with_reason=True,
        initial=ae_forms.initial_of(event),
    )
    action = Action(
        title=_("Correct the adverse event"),
        submit=_("Save the correction"),
        back=event_url(event),
        about=_("The earlier values stay in the event's history with your reason."),
        participant=event.participant,
    )
    refused = _refusal(lambda: _require_recorder(user, event.participant.site_id))

    def perform(values: dict[str, Any]) -> str:
        changes = form.event_values()
        services.adverse_event_correct(event=event, reason=values["reason"], by=user, **changes)
        return _("Correction saved.")

    return _run(request, action, form, perform, field_for=form.field_for, refused=refused)


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def follow_up(request: HttpRequest, event_id: int) -> HttpResponse:
    user = request.user
    event, zone = _event_action(request, event_id)
    form = ae_forms.FollowUpForm(_data(request), zone=zone)
    action = Action(
        title=_("Add a follow-up"),
        submit=_("Add the follow-up"),
        back=event_url(event),
        participant=event.participant,
    )
    refused = _refusal(lambda: _require_recorder(user, event.participant.site_id))

    def perform(values: dict[str, Any]) -> str:
        services.adverse_event_follow_up(
            event=event, note=values["note"], outcome=values["outcome"], resolved_at=values["resolved_at"], by=user
        )
        return _("Follow-up added.")

    return _run(request, action, form, perform, refused=refused)


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def review(request: HttpRequest, event_id: int) -> HttpResponse:
    user = request.user
    event, _zone_unused = _event_action(request, event_id)
    form = ae_forms.ReviewForm(_data(request))
    action = Action(
        title=_("Review the adverse event"),
        submit=_("Sign off the review"),
        back=event_url(event),
        about=_("Your causality assessment and sign-off. The first review stops the 24-hour reporting clock."),
        participant=event.participant,
    )
    refused = None
    if not access.has_role(user, event.participant.site_id, {Role.INVESTIGATOR}):
        refused = PermissionDeniedError("only an investigator at this site can review an adverse event")

    def perform(values: dict[str, Any]) -> str:
        services.adverse_event_review(event=event, by=user, **values)
        return _("Review signed off.")

    return _run(request, action, form, perform, refused=refused)


# --- the summary -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    series: int
    label: str
    value: int
    y: str
    width: str
    text_x: str
    text_y: str


@dataclass(frozen=True)
class ChartRow:
    label: str
    label_y: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class SummaryChart:
    """Horizontal bars: events per category, one bar per series (the arms, or the pooled count)."""

    width: int
    height: int
    plot_left: int
    rows: tuple[ChartRow, ...]
    series: tuple[str, ...]


BAR, GAP, LEFT, RIGHT, WIDTH = 14, 10, 230, 40, 640


def summary_chart(series: list[tuple[str, dict[str, int]]], categories: list[tuple[str, str]]) -> SummaryChart:
    """``series``: (label, events by category code) per bar series; ``categories``: (code, label) in order."""
    most = max((values.get(code, 0) for _label, values in series for code, _l in categories), default=0) or 1
    span = WIDTH - LEFT - RIGHT
    rows, y = [], 10
    for code, label in categories:
        bars = []
        top = y
        for index, (series_label, values) in enumerate(series):
            value = values.get(code, 0)
            width = span * value / most
            bars.append(
                Bar(index, series_label, value, coord(y), coord(width), coord(LEFT + width + 4), coord(y + BAR - 3))
            )
            y += BAR + 2
        rows.append(ChartRow(label, coord((top + y - 2) / 2 + 4), tuple(bars)))
        y += GAP
    return SummaryChart(WIDTH, y + 4, LEFT, tuple(rows), tuple(label for label, _v in series))


@staff_page
@require_GET
def summary(request: HttpRequest) -> HttpResponse:
    studies, study, _sites = chosen_study(request)
    if study is None:
        return render(request, "dashboard/adverse_events/summary.html", {"studies": []})
    try:
        result = selectors.adverse_event_summary(request.user, study=study)
    except Http404:
        result = None  # a rater of a study that hides safety data: nothing to count, and nothing said about it
    chart = None
    if result is not None:
        categories = [(row.category, row.label) for row in result.pooled]
        if result.arms is not None:
            series = [(arm.label, {r.category: r.counts.events for r in arm.rows}) for arm in result.arms]
        else:
            series = [(_("All participants"), {r.category: r.counts.events for r in result.pooled})]
        chart = summary_chart(series, categories)
    context = {"studies": studies, "study": study, "summary": result, "chart": chart}
    return render(request, "dashboard/adverse_events/summary.html", context)
