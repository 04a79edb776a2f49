"""The study overview (/overview/): the study's flow (CONSORT-style, per site and for all the user's sites), enrolment
over time against the target, visit adherence, and (for viewers who may see the allocation) the randomized per arm.

Every number comes from an aggregate query in the owning app's selectors, so the page costs the same few queries
however many participants the study has. Who sees which sites and arms is ``participants.access``'s answer: a viewer
who may not see the allocation gets no arm and no visit that only one arm has (the matrix's rule, reused).

The charts are inline SVG drawn here from the same numbers as the tables beside them; coordinates are formatted as
text in Python (a template would localise a float's decimal point).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET

from dashboard.charts import COUNT_STEPS, PlotFrame, coord, tick_step
from dashboard.matrix_cells import Column, visit_columns
from dashboard.views import chosen_study, staff_page
from participants import access
from participants import selectors as participant_selectors
from participants.models import Site, Study
from scheduling import selectors as scheduling_selectors

Label = str | Promise


@dataclass(frozen=True)
class Stage:
    key: str
    label: Label
    level: int  # 0 a stage of the flow; 1 a part of the stage above it


# The flow's rows, top to bottom. Keys are participants.selectors.FLOW_STAGES.
STAGES: tuple[Stage, ...] = (
    Stage("screened", pgettext_lazy("study flow", "Screened"), 0),
    Stage("screen_failed", pgettext_lazy("study flow", "Screen failed"), 1),
    Stage("consented", pgettext_lazy("study flow", "Consented"), 0),
    Stage("enrolled", pgettext_lazy("study flow", "Enrolled"), 0),
    Stage("randomized", pgettext_lazy("study flow", "Randomized"), 0),
    Stage("in_treatment", pgettext_lazy("study flow", "Started treatment"), 0),
    Stage("completed", pgettext_lazy("study flow", "Completed the study"), 0),
    Stage("withdrawn", pgettext_lazy("study flow", "Withdrawn"), 0),
    Stage("withdrawn_stop_contact", pgettext_lazy("study flow", "Stop contact"), 1),
    Stage("withdrawn_stop_follow_up", pgettext_lazy("study flow", "Stop follow-up visits"), 1),
    Stage("withdrawn_stop_data_use", pgettext_lazy("study flow", "Stop all further use of data"), 1),
    Stage("lost_to_follow_up", pgettext_lazy("study flow", "Lost to follow-up"), 0),
)
WITHDRAWN_LEVELS = ("withdrawn_stop_contact", "withdrawn_stop_follow_up", "withdrawn_stop_data_use")


def _percent(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)} %" if whole else "—"


# --- the flow -------------------------------------------------------------------------------------------------------


@dataclass
class FlowRow:
    key: str
    label: Label
    level: int
    per_site: list[int]
    total: int


@dataclass
class ReasonRow:
    label: str
    kind: Label
    per_site: list[int]
    total: int


def flow_rows(sites: list[Site], counts: dict[int, dict[str, int]]) -> list[FlowRow]:
    rows = []
    for stage in STAGES:
        if stage.key == "withdrawn":
            per_site = [sum(counts.get(s.pk, {}).get(k, 0) for k in WITHDRAWN_LEVELS) for s in sites]
        else:
            per_site = [counts.get(s.pk, {}).get(stage.key, 0) for s in sites]
        rows.append(FlowRow(stage.key, stage.label, stage.level, per_site, sum(per_site)))
    return rows


CRITERION_KIND: dict[str, Label] = {"inclusion": _("Inclusion"), "exclusion": _("Exclusion")}


def reason_rows(
    sites: list[Site], study: Study, failures: dict[int, dict[int, int]], counts: dict[int, dict[str, int]]
) -> list[ReasonRow]:
    """One row per criterion failed by at least one screen-failed participant, in the order the criteria are asked,
    then the screen failures no criterion explains (an investigator's decision)."""
    rows = []
    for criterion in participant_selectors.criteria_of(study):
        per_site = [failures.get(s.pk, {}).get(criterion.pk, 0) for s in sites]
        if any(per_site):
            rows.append(
                ReasonRow(
                    f"{criterion.code} · {criterion.text}",
                    CRITERION_KIND.get(criterion.kind, criterion.kind),
                    per_site,
                    sum(per_site),
                )
            )
    per_site = [counts.get(s.pk, {}).get("screen_failed_no_criterion", 0) for s in sites]
    if any(per_site):
        rows.append(ReasonRow(str(_("No criterion failed (investigator's decision)")), "—", per_site, sum(per_site)))
    return rows


# --- enrolment over time --------------------------------------------------------------------------------------------

EN_WIDTH = 640
EN_HEIGHT = 260
EN_LEFT = 48
EN_RIGHT = 16
EN_TOP = 16
EN_BOTTOM = 40


@dataclass
class WeekRow:
    week: dt.date
    enrolled: int
    cumulative: int
    share: str  # of the target
    x: str = ""
    y: str = ""


@dataclass
class EnrollmentChart(PlotFrame):
    weeks: list[WeekRow]
    target: int
    total: int
    width: int = EN_WIDTH
    height: int = EN_HEIGHT
    drawn: bool = False
    path: str = ""
    target_y: str = ""
    x_ticks: list[tuple[str, str]] = field(default_factory=list)
    y_ticks: list[tuple[str, str]] = field(default_factory=list)
    target_label_x: str = coord(EN_WIDTH - EN_RIGHT)
    LEFT, RIGHT, TOP, BOTTOM = EN_LEFT, EN_RIGHT, EN_TOP, EN_BOTTOM


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def enrollment_chart(by_week: dict[dt.date, int], target: int, today: dt.date) -> EnrollmentChart:
    """Cumulative enrolment at the end of each week (Monday to Sunday, UTC), from the first week with an enrolment to
    the current week, with the study's target as a horizontal line."""
    if not by_week:
        return EnrollmentChart(weeks=[], target=target, total=0)
    first, last = min(by_week), max(max(by_week), _monday(today))
    weeks: list[WeekRow] = []
    running = 0
    week = first
    while week <= last:
        running += by_week.get(week, 0)
        weeks.append(WeekRow(week, by_week.get(week, 0), running, _percent(running, target)))
        week += dt.timedelta(days=7)
    chart = EnrollmentChart(weeks=weeks, target=target, total=running, drawn=True)
    high = max(target, running, 1)
    step = tick_step(high, 5, COUNT_STEPS)
    high = math.ceil(high / step) * step
    plot_w = EN_WIDTH - EN_LEFT - EN_RIGHT
    plot_h = EN_HEIGHT - EN_TOP - EN_BOTTOM
    span = max(len(weeks) - 1, 1)

    def x(index: int) -> float:
        return EN_LEFT + index / span * plot_w

    def y(value: float) -> float:
        return EN_TOP + (high - value) / high * plot_h

    for index, row in enumerate(weeks):
        row.x, row.y = coord(x(index)), coord(y(row.cumulative))
    chart.path = " ".join(f"{row.x},{row.y}" for row in weeks)
    if target:
        chart.target_y = coord(y(target))
    chart.y_ticks = [(coord(y(v)), str(v)) for v in range(0, high + 1, step)]
    every = max(1, math.ceil(len(weeks) / 8))
    chart.x_ticks = [(row.x, f"{row.week:%Y-%m-%d}") for row in weeks[::every]]
    return chart


# --- visit adherence ------------------------------------------------------------------------------------------------

AD_WIDTH = 640
AD_LEFT = 110  # room for the visit codes
AD_RIGHT = 56  # room for the share
AD_TOP = 8
AD_ROW = 22


@dataclass
class AdherenceRow:
    column: Column
    due: int
    completed: int
    in_window: int
    share: str
    bar_width: str = ""
    y: str = ""
    label_y: str = ""


@dataclass
class AdherenceChart:
    rows: list[AdherenceRow]
    width: int = AD_WIDTH
    height: int = 0
    plot_left: str = coord(AD_LEFT)
    share_x: str = coord(AD_WIDTH - AD_RIGHT + 6)
    full_width: str = coord(AD_WIDTH - AD_LEFT - AD_RIGHT)


def adherence_chart(columns: list[Column], found: dict[str, scheduling_selectors.VisitAdherence]) -> AdherenceChart:
    rows = []
    plot = AD_WIDTH - AD_LEFT - AD_RIGHT
    for i, column in enumerate(columns):
        got = found.get(column.code)
        due, completed, in_window = (got.due, got.completed, got.in_window) if got else (0, 0, 0)
        top = AD_TOP + i * AD_ROW
        rows.append(
            AdherenceRow(
                column=column,
                due=due,
                completed=completed,
                in_window=in_window,
                share=_percent(in_window, due),
                bar_width=coord(plot * in_window / due if due else 0),
                y=coord(top + 3),
                label_y=coord(top + 15),
            )
        )
    return AdherenceChart(rows=rows, height=AD_TOP + AD_ROW * len(rows) + 8)


# --- arms -----------------------------------------------------------------------------------------------------------


@dataclass
class ArmRow:
    code: str
    label: str
    per_site: list[int]
    total: int


def arm_rows(sites: list[Site], study: Study, by_arm: dict[int, dict[str, int]]) -> list[ArmRow]:
    rows = []
    for arm in study.arms.all():
        per_site = [by_arm.get(s.pk, {}).get(arm.code, 0) for s in sites]
        rows.append(ArmRow(arm.code, arm.label, per_site, sum(per_site)))
    return rows


# --- the page -------------------------------------------------------------------------------------------------------


@staff_page
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    user = request.user
    studies, study, sites = chosen_study(request)
    if study is None:
        return render(request, "dashboard/overview/overview.html", {"studies": []})
    site_ids = [s.pk for s in sites]
    # One blinded site among the user's is enough to hide the arms and the arm-only visits: the totals add up sites.
    arm_visible = bool(site_ids) and all(access.can_see_allocation(user, site_id=sid, study=study) for sid in site_ids)
    now = timezone.now()

    counts = participant_selectors.overview_flow(user, study=study, site_ids=site_ids)
    failures = participant_selectors.overview_screen_failures(user, study=study, site_ids=site_ids)
    by_week = participant_selectors.overview_enrolled_by_week(user, study=study, site_ids=site_ids)
    columns = visit_columns(scheduling_selectors.study_protocol(study.protocol_code), arm_visible=arm_visible)
    adherence = scheduling_selectors.overview_visit_adherence(
        user,
        study_id=study.pk,
        site_ids=site_ids,
        codes=[c.code for c in columns],
        days=scheduling_selectors.site_days(user, now),
    )
    context = {
        "studies": studies,
        "study": study,
        "sites": sites,
        "flow": flow_rows(sites, counts),
        "reasons": reason_rows(sites, study, failures, counts),
        "enrollment": enrollment_chart(by_week, study.target_enrollment, now.astimezone(dt.UTC).date()),
        "adherence": adherence_chart(columns, adherence),
        "arm_visible": arm_visible,
        # Read only for a viewer who may see the allocation: for anyone else the arms are never in the context.
        "arms": arm_rows(
            sites, study, participant_selectors.overview_randomized_by_arm(user, study=study, site_ids=site_ids)
        )
        if arm_visible
        else None,
    }
    return render(request, "dashboard/overview/overview.html", context)
