"""The participant page (``/participants/<participant_id>/``): one participant's record for staff, read-only.

Everything is read through the owning apps' selectors; who sees what is ``participants.access``'s answer (the arm only
where ``can_see_allocation`` allows, contact details only where ``can_see_contact`` does, and the audit history
redacted by ``audit.selectors.participant_history_page`` with the same two answers, as the API does). Another site's
participant is a 404. Dates and times are shown in the site's time zone; study days are counted as the exports count
them (``scheduling.selectors.study_day_zero``).

The charts are drawn here as inline SVG, from the same rows the tables beside them show. Coordinates are formatted
as text in Python: a template would localise a float's decimal point (a Spanish page would write "12,5").
"""

from __future__ import annotations

import datetime as dt
import json
import math
import zoneinfo
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import dateformat, timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET

from assessments import selectors as assessment_selectors
from assessments.library import shipped_instruments
from assessments.models import Administration, Score
from assessments.windows import administration_status, is_open
from audit.models import AuditEvent
from audit.selectors import participant_history_page
from dashboard.charts import DAY_STEPS, PlotFrame, coord, tick_step
from dashboard.page_actions import page_actions
from dashboard.views import staff_page
from participants import access
from participants import hooks as participant_hooks
from participants import selectors as participant_selectors
from participants.models import Participant
from scheduling import selectors as scheduling_selectors
from scheduling.blinded_view import Lens
from scheduling.models import Visit

Label = str | Promise

PARTICIPANT_STATUS: dict[str, Label] = {
    "screening": pgettext_lazy("participant status", "Screening"),
    "eligible": pgettext_lazy("participant status", "Eligible"),
    "screen_failed": pgettext_lazy("participant status", "Screen failed"),
    "consented": pgettext_lazy("participant status", "Consented"),
    "enrolled": pgettext_lazy("participant status", "Enrolled"),
    "randomized": pgettext_lazy("participant status", "Randomized"),
    "in_treatment": pgettext_lazy("participant status", "In treatment"),
    "completed": pgettext_lazy("participant status", "Completed"),
    "withdrawn": pgettext_lazy("participant status", "Withdrawn"),
    "lost_to_follow_up": pgettext_lazy("participant status", "Lost to follow-up"),
}
VISIT_STATUS: dict[str, Label] = {
    "planned": pgettext_lazy("visit status", "Planned"),
    "scheduled": pgettext_lazy("visit status", "Scheduled"),
    "completed": pgettext_lazy("visit status", "Completed"),
    "missed": pgettext_lazy("visit status", "Missed"),
    "cancelled": pgettext_lazy("visit status", "Cancelled"),
}
QUESTIONNAIRE_STATUS: dict[str, Label] = {
    "due": pgettext_lazy("questionnaire status", "Due"),
    "in_progress": pgettext_lazy("questionnaire status", "In progress"),
    "completed": pgettext_lazy("questionnaire status", "Completed"),
    "expired": pgettext_lazy("questionnaire status", "Expired"),
    "not_applicable": pgettext_lazy("questionnaire status", "Not applicable"),
}
RESPONDENT: dict[str, Label] = {"self": _("Participant"), "clinician": _("Clinician")}
WITHDRAWAL_LEVEL: dict[str, Label] = {
    "stop_contact": _("Stop contact"),
    "stop_follow_up": _("Stop follow-up visits"),
    "stop_data_use": _("Stop all further use of data"),
}
CRITERION_KIND: dict[str, Label] = {"inclusion": _("Inclusion"), "exclusion": _("Exclusion")}


@dataclass(frozen=True)
class SeriesSpec:
    instrument: str
    scale: str
    label: Label


@dataclass(frozen=True)
class ChartSpec:
    key: str
    title: Label
    series: tuple[SeriesSpec, ...]


# The trajectories the page draws; a chart (and a series) appears only when the participant has scores for it.
TRAJECTORIES: tuple[ChartSpec, ...] = (
    ChartSpec("pcl5", "PCL-5", (SeriesSpec("PCL5", "total", _("Total")),)),
    ChartSpec("caps5", "CAPS-5", (SeriesSpec("CAPS5", "total", _("Total")),)),
    ChartSpec(
        "lsas",
        "LSAS",
        (SeriesSpec("LSAS", "total", _("Total (clinician)")), SeriesSpec("LSAS_SR", "total", _("Total (self-report)"))),
    ),
    ChartSpec(
        "scs",
        "SCS",
        (
            SeriesSpec("SCS", "cs", "CS"),
            SeriesSpec("SCS", "ucs", "UCS"),
            SeriesSpec("SCS_SF", "cs", _("CS (short form)")),
            SeriesSpec("SCS_SF", "ucs", _("UCS (short form)")),
        ),
    ),
)


def number(value: float | None) -> str:
    """A score as text: whole numbers without decimals, others with two."""
    if value is None:
        return "—"
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def _local(instant: dt.datetime | None, zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    return instant.astimezone(zone) if instant is not None else None


# --- the visit timeline -------------------------------------------------------------------------------------------

TL_WIDTH = 1000
TL_LEFT = 86  # room for the visit codes
TL_RIGHT = 16
TL_TOP = 30  # the date axis
TL_ROW = 24


@dataclass
class TimelineRow:
    visit: Visit
    status_label: Label
    scheduled: dt.datetime | None
    scheduled_end: dt.datetime | None
    actual: dt.datetime | None
    y: str = ""
    label_y: str = ""
    window: tuple[str, str] | None = None  # x, width
    target_x: str | None = None
    scheduled_x: str | None = None
    actual_x: str | None = None
    title: str = ""


@dataclass
class Timeline:
    rows: list[TimelineRow]
    width: int = TL_WIDTH
    height: int = 0
    ticks: list[tuple[str, str]] = field(default_factory=list)
    today_x: str | None = None
    drawn: bool = False
    axis_y: str = ""
    bottom: str = ""


def timeline(visits: Iterable[Visit], zone: zoneinfo.ZoneInfo, today: dt.date) -> Timeline:
    rows = []
    for v in visits:
        rows.append(
            TimelineRow(
                visit=v,
                status_label=VISIT_STATUS.get(v.status, v.status),
                scheduled=_local(v.scheduled_start, zone),
                scheduled_end=_local(v.scheduled_end, zone),
                actual=_local(v.occurred_at, zone),
            )
        )
    out = Timeline(rows=rows)
    days: list[dt.date] = []
    for row in rows:
        v = row.visit
        days += [d for d in (v.window_start, v.window_end, v.target_date) if d is not None]
        days += [t.date() for t in (row.scheduled, row.actual) if t is not None]
    if not days:
        return out
    first, last = min(days), max(days) + dt.timedelta(days=1)  # a date covers its whole day
    span = max((last - first).days, 1)
    plot = TL_WIDTH - TL_LEFT - TL_RIGHT

    def x(day: dt.date, fraction: float = 0.0) -> float:
        return TL_LEFT + ((day - first).days + fraction) / span * plot

    out.drawn = True
    out.height = TL_TOP + TL_ROW * len(rows) + 8
    out.axis_y = coord(TL_TOP - 4)
    out.bottom = coord(out.height - 4)
    step = tick_step(span, 7, DAY_STEPS)
    for n in range(0, span + 1, step):
        day = first + dt.timedelta(days=n)
        out.ticks.append((coord(x(day)), dateformat.format(day, "j M")))
    if first <= today < last:
        out.today_x = coord(x(today, 0.5))
    for i, row in enumerate(rows):
        v = row.visit
        top = TL_TOP + i * TL_ROW
        row.y = coord(top + 5)
        row.label_y = coord(top + 16)
        parts = [f"{v.code}: {row.status_label}"]
        if v.window_start and v.window_end:
            row.window = (coord(x(v.window_start)), coord(x(v.window_end, 1.0) - x(v.window_start)))
            parts.append(f"{_('window')} {v.window_start:%Y-%m-%d} – {v.window_end:%Y-%m-%d}")
        if v.target_date:
            row.target_x = coord(x(v.target_date, 0.5))
            parts.append(f"{_('target')} {v.target_date:%Y-%m-%d}")
        if row.scheduled:
            row.scheduled_x = coord(x(row.scheduled.date(), 0.5))
            parts.append(f"{_('scheduled')} {row.scheduled:%Y-%m-%d %H:%M}")
        if row.actual:
            row.actual_x = coord(x(row.actual.date(), 0.5))
            parts.append(f"{_('actual')} {row.actual:%Y-%m-%d %H:%M}")
        row.title = "; ".join(str(p) for p in parts)
    return out


# --- questionnaires and trajectories --------------------------------------------------------------------------------


@dataclass
class QuestionnaireRow:
    administration: Administration
    status_label: Label
    respondent_label: Label
    submitted: dt.datetime | None
    scores: list[tuple[str, Label]]  # (scale or flag code, value)
    # Not offered to the participant: no text pack holds its wording in their language.
    held: bool = False


FLAG_STATE: dict[float, Label] = {1: pgettext_lazy("flag", "yes"), 0: pgettext_lazy("flag", "no")}


def flag_text(text: str | None, value: float | None) -> Label:
    """A flag as the scoring stored it: a level by its text (a C-SSRS risk level), a yes/no rule as yes or no, and a
    rule that could not be decided (answers missing) as unknown. The exports keep the stored 1 / 0 / empty."""
    if text:
        return text
    if value is None:
        return pgettext_lazy("flag", "unknown")
    return FLAG_STATE.get(value, number(value))


def questionnaires(
    adms: Sequence[Administration], zone: zoneinfo.ZoneInfo, now: dt.datetime, held: Collection[int] = ()
) -> list[QuestionnaireRow]:
    out = []
    for adm in adms:
        response = getattr(adm, "response", None)
        scores = []
        if response is not None:
            # Scale scores, then flags (e.g. a C-SSRS screen's risk level), as the scoring stored them.
            scores = [
                (s.code, number(s.value) if s.kind == Score.Kind.SCALE else flag_text(s.text_value, s.value))
                for s in sorted(response.scores.all(), key=lambda s: s.kind != Score.Kind.SCALE)
            ]
        status = administration_status(adm, now)
        out.append(
            QuestionnaireRow(
                administration=adm,
                status_label=QUESTIONNAIRE_STATUS.get(status, status),
                respondent_label=RESPONDENT.get(adm.respondent, adm.respondent),
                submitted=_local(response.submitted_at, zone) if response is not None else None,
                scores=scores,
                held=adm.pk in held,
            )
        )
    return out


def linkable_visits(adms: Sequence[Administration], now: dt.datetime, held: Collection[int] = ()) -> list[Visit]:
    """The visits with a self-report questionnaire open now (``windows.is_open``) and offered to the participant (not
    ``held``), each once, in the order given."""
    out: dict[int, Visit] = {}
    for adm in adms:
        if adm.respondent == Administration.Respondent.SELF and is_open(adm, now) and adm.pk not in held:
            out.setdefault(adm.visit_id, adm.visit)
    return list(out.values())


CH_WIDTH = 420
CH_HEIGHT = 240
CH_LEFT = 44
CH_RIGHT = 14
CH_TOP = 14
CH_BOTTOM = 34
# Series differ by line pattern and marker as well as colour, so the chart does not rely on colour alone.
MARKERS = ("circle", "square", "triangle", "diamond")


@dataclass
class Point:
    x: str
    y: str
    title: str
    shape: str
    # The square, triangle and diamond as polygons; the circle uses x and y.
    polygon: str = ""


@dataclass
class Series:
    key: str
    label: Label
    index: int
    points: list[Point]
    path: str = ""
    legend_marker: str = ""  # the marker's polygon in the legend's swatch (empty for a circle)


@dataclass
class TrajectoryRow:
    day: int
    visit_code: str
    date: dt.date
    values: list[str]


@dataclass
class Trajectory(PlotFrame):
    key: str
    title: Label
    series: list[Series]
    rows: list[TrajectoryRow]
    width: int = CH_WIDTH
    height: int = CH_HEIGHT
    x_ticks: list[tuple[str, str]] = field(default_factory=list)
    y_ticks: list[tuple[str, str]] = field(default_factory=list)
    LEFT, RIGHT, TOP, BOTTOM = CH_LEFT, CH_RIGHT, CH_TOP, CH_BOTTOM


def _marker(shape: str, cx: float, cy: float) -> str:
    r = 4.0
    corners = {
        "square": [(-r, -r), (r, -r), (r, r), (-r, r)],
        "triangle": [(0, -r - 1), (r + 1, r), (-r - 1, r)],
        "diamond": [(0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0)],
    }.get(shape, [])
    return " ".join(f"{coord(cx + dx)},{coord(cy + dy)}" for dx, dy in corners)


def _scale_range(spec: SeriesSpec) -> tuple[float, float] | None:
    instrument = shipped_instruments().get(spec.instrument)
    if instrument is None:
        return None
    try:
        scale = instrument.scale(spec.scale)
    except KeyError:
        return None
    return float(scale.range_min), float(scale.range_max)


def trajectories(
    adms: Sequence[Administration],
    day0: dt.date | None,
    participant_zone: zoneinfo.ZoneInfo,
    site_zone: zoneinfo.ZoneInfo,
) -> list[Trajectory]:
    """One chart per entry of TRAJECTORIES that has data; x is the study day of submission, y the score."""
    if day0 is None:
        return []
    # (instrument, scale) -> [(study day, visit code, site-local date, value)]
    found: dict[tuple[str, str], list[tuple[int, str, dt.date, float]]] = {}
    for adm in adms:
        response = getattr(adm, "response", None)
        if response is None:
            continue
        day = (response.submitted_at.astimezone(participant_zone).date() - day0).days
        for s in response.scores.all():
            if s.kind == Score.Kind.SCALE and s.value is not None:
                found.setdefault((adm.instrument_code, s.code), []).append(
                    (day, adm.visit.code, response.submitted_at.astimezone(site_zone).date(), s.value)
                )
    charts = []
    for spec in TRAJECTORIES:
        present = [s for s in spec.series if (s.instrument, s.scale) in found]
        if not present:
            continue
        data = {s: sorted(found[(s.instrument, s.scale)]) for s in present}
        all_days = [d for points in data.values() for d, *_rest in points]
        values = [p[3] for points in data.values() for p in points]
        ranges = [r for r in (_scale_range(s) for s in present) if r is not None]
        low = min([r[0] for r in ranges] + values)
        high = max([r[1] for r in ranges] + values)
        if high == low:
            high = low + 1
        first, last = min(all_days), max(all_days)
        if first == last:
            first, last = first - 1, last + 1
        plot_w = CH_WIDTH - CH_LEFT - CH_RIGHT
        plot_h = CH_HEIGHT - CH_TOP - CH_BOTTOM

        def cx(day: int, first: int = first, last: int = last, plot_w: int = plot_w) -> float:
            return CH_LEFT + (day - first) / (last - first) * plot_w

        def cy(value: float, low: float = low, high: float = high, plot_h: int = plot_h) -> float:
            return CH_TOP + (high - value) / (high - low) * plot_h

        series = []
        for index, s in enumerate(present):
            shape = MARKERS[index % len(MARKERS)]
            points = []
            for day, code, _date, value in data[s]:
                px, py = cx(day), cy(value)
                title = f"{s.label}: {number(value)} ({code}, {_('study day')} {day})"
                points.append(Point(coord(px), coord(py), title, shape, _marker(shape, px, py)))
            line = " ".join(f"{p.x},{p.y}" for p in points)
            series.append(
                Series(
                    key=f"{s.instrument}-{s.scale}",
                    label=s.label,
                    index=index,
                    points=points,
                    path=line,
                    legend_marker=_marker(shape, 14, 6),
                )
            )
        rows: dict[tuple[int, str, dt.date], list[str]] = {}
        for index, s in enumerate(present):
            for day, code, date, value in data[s]:
                rows.setdefault((day, code, date), ["—"] * len(present))[index] = number(value)
        chart = Trajectory(
            key=spec.key,
            title=spec.title,
            series=series,
            rows=[TrajectoryRow(day, code, date, vals) for (day, code, date), vals in sorted(rows.items())],
        )
        span = last - first
        step = tick_step(span, 6, DAY_STEPS)
        start = math.ceil(first / step) * step
        chart.x_ticks = [(coord(cx(d)), str(d)) for d in range(start, last + 1, step)]
        chart.y_ticks = [(coord(cy(low + (high - low) * k / 4)), number(low + (high - low) * k / 4)) for k in range(5)]
        charts.append(chart)
    return charts


# --- the audit history ----------------------------------------------------------------------------------------------


def _value(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@dataclass
class HistoryRow:
    event: AuditEvent
    when: dt.datetime
    who: str
    old: str
    new: str


def history(events: Iterable[AuditEvent], zone: zoneinfo.ZoneInfo) -> list[HistoryRow]:
    """The events as given (newest first). A redacted row keeps who, when and what changed, without its values."""
    rows = []
    for e in events:
        hidden = str(_("(hidden)"))
        rows.append(
            HistoryRow(
                event=e,
                when=e.occurred_at.astimezone(zone),
                who=e.actor_username or str(_("system")),
                old=hidden if e.redacted else _value(e.old_value),
                new=hidden if e.redacted else _value(e.new_value),
            )
        )
    return rows


HISTORY_PER_PAGE = 50


@dataclass
class HistoryPage:
    rows: list[HistoryRow]
    number: int
    pages: int
    total: int

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None


def page_number(value: str | None) -> int:
    """?history-page=N as a page number: anything that is not a positive number is the first page."""
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


def history_page(
    participant: Participant,
    zone: zoneinfo.ZoneInfo,
    *,
    number: int,
    allocation: bool,
    contact: bool,
    safety: bool = True,
    hidden: Q | None = None,
) -> HistoryPage:
    """One page of the history, newest first, in two queries however long the history is. A page past the end shows
    the last one."""
    total, events = participant_history_page(
        participant.participant_id,
        can_see_allocation=allocation,
        can_see_contact=contact,
        can_see_safety=safety,
        hidden=hidden,
        offset=(number - 1) * HISTORY_PER_PAGE,
        limit=HISTORY_PER_PAGE,
    )
    pages = max(1, math.ceil(total / HISTORY_PER_PAGE))
    if number > pages:
        return history_page(
            participant, zone, number=pages, allocation=allocation, contact=contact, safety=safety, hidden=hidden
        )
    return HistoryPage(rows=history(events, zone), number=number, pages=pages, total=total)


# --- the page -------------------------------------------------------------------------------------------------------


def _page_context(user: Any, participant: Participant, now: dt.datetime, history_number: int = 1) -> dict[str, Any]:
    site_zone = zoneinfo.ZoneInfo(participant.site.time_zone)
    participant_zone = zoneinfo.ZoneInfo(participant.time_zone)
    allocation_visible = access.can_see_allocation(user, site_id=participant.site_id, study=participant.study)
    contact_visible = access.can_see_contact(user, participant.site_id)
    lens = Lens(user)
    visits = list(scheduling_selectors.visits_of(participant))
    adms = list(assessment_selectors.administrations_of_participant(participant))
    if lens.blinded_at(participant.site_id, participant.study):
        # The schedule as a blinded viewer sees it (scheduling.blinded_view): the visits every arm has alike, the
        # timepoints under their neutral names, and the questionnaires of the visits shown with dates only.
        visits = lens.present(lens.order(lens.annotate(lens.shown(scheduling_selectors.visits_of(participant)))))
        shown = {v.pk: v for v in visits}
        dated = {v.pk for v in visits if v.target_date is not None or v.unscheduled}
        adms = [a for a in adms if a.visit_id in dated]
        for a in adms:
            a.visit = shown[a.visit_id]
    consents = list(participant_selectors.consents_of(participant))
    held = assessment_selectors.held_administration_ids(participant, adms)
    return {
        "participant": participant,
        "site_zone": participant.site.time_zone,
        # The medications page, unless safety data of this participant is hidden from the viewer (a rater).
        "medications_visible": not access.safety_hidden_from(
            user, site_id=participant.site_id, study=participant.study
        ),
        "status_label": PARTICIPANT_STATUS.get(participant.status, participant.status),
        "withdrawal_label": WITHDRAWAL_LEVEL.get(participant.withdrawal_level, participant.withdrawal_level),
        # The arm is read only for a viewer who may see it: for anyone else it is never in the context at all.
        "arm": participant_selectors.arm_of(participant) if allocation_visible else None,
        "contact": getattr(participant, "contact", None) if contact_visible else None,
        "contact_visible": contact_visible,
        "consents": [(c, c.signed_at.astimezone(site_zone)) for c in consents],
        "latest_consent": consents[-1] if consents else None,
        "answers": [
            (a, CRITERION_KIND.get(a.criterion.kind, a.criterion.kind), a.answered_at.astimezone(site_zone))
            for a in participant_selectors.eligibility_answers_of(participant)
        ],
        "timeline": timeline(visits, site_zone, now.astimezone(site_zone).date()),
        "questionnaires": questionnaires(adms, site_zone, now, held),
        # Visits whose self-report questionnaires can be answered now: a link may be sent for them (the service
        # decides; the form shows only where the user's role may send one).
        "linkable_visits": linkable_visits(adms, now, held) if access.can_manage(user, participant.site_id) else [],
        "trajectories": trajectories(
            adms, scheduling_selectors.study_day_zero(participant), participant_zone, site_zone
        ),
        "history_page": history_page(
            participant,
            site_zone,
            number=history_number,
            allocation=allocation_visible,
            contact=contact_visible,
            hidden=participant_hooks.history_hidden(user, participant),
            safety=not access.safety_hidden_from(user, site_id=participant.site_id, study=participant.study),
        ),
        "actions": page_actions(user, participant, visits, adms, now),
    }


@staff_page
@require_GET
def participant_page(request: HttpRequest, participant_id: str) -> HttpResponse:
    participant = participant_selectors.participant_page_get(request.user, participant_id)  # other sites: 404
    context = _page_context(request.user, participant, timezone.now(), page_number(request.GET.get("history-page")))
    return render(request, "dashboard/participant/page.html", context)
