"""The blinding pages: /guesses/ (the study's blinding report) and /participants/<id>/guesses/ (record a guess).

The report follows ``safety.guess_selectors.blinding_report``: Bang's index per arm, timepoint and respondent as a
chart with its table beside it for a viewer who may see the allocation at every site shown; the pooled distribution
of answers for anyone else. The study's arm names are the options of every guess, the same for every participant, so
they show to blinded staff too; each such element is marked ``data-arm-option`` (the blinding walk's exception).
A participant's guesses are listed only for staff who may read them back: an independent rater records and sees none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from dashboard.charts import coord
from dashboard.views import chosen_study, staff_page
from participants import selectors as participant_selectors
from participants.models import Participant
from safety import guess_selectors
from safety import services as safety_services
from safety.models import TreatmentGuess
from scheduling import selectors as scheduling_selectors
from scheduling.blinded_view import Lens
from scheduling.models import Visit
from trialsite.errors import ServiceError


@dataclass(frozen=True)
class Bar:
    heading: str  # timepoint and respondent
    option: str  # the arm or answer the bar counts (an arm name: marked data-arm-option)
    value: float
    text: str
    x: str
    width: str
    y: str
    label_y: str


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars on a linear scale from ``low`` to ``high`` (a zero line where the scale crosses it)."""

    bars: list[Bar]
    low: float
    high: float
    width: int = 640
    LEFT: int = 260
    RIGHT: int = 60
    ROW: int = 22
    TOP: int = 10

    @property
    def height(self) -> int:
        return self.TOP * 2 + self.ROW * max(len(self.bars), 1)

    @property
    def zero_x(self) -> str:
        return coord(self._x(0.0))

    @property
    def plot_bottom(self) -> str:
        return coord(self.height - self.TOP)

    @property
    def plot_top(self) -> str:
        return coord(self.TOP)

    def _x(self, value: float) -> float:
        span = (self.high - self.low) or 1.0
        return self.LEFT + (value - self.low) / span * (self.width - self.LEFT - self.RIGHT)


def bar_chart(rows: list[tuple[str, str, float, str]], low: float, high: float) -> BarChart:
    chart = BarChart(bars=[], low=low, high=high)
    bars = []
    for i, (heading, option, value, text) in enumerate(rows):
        start, end = sorted((chart._x(0.0 if low <= 0 else low), chart._x(value)))
        y = chart.TOP + i * chart.ROW
        bars.append(
            Bar(heading, option, value, text, coord(start), coord(max(end - start, 1)), coord(y + 3), coord(y + 15))
        )
    return BarChart(bars=bars, low=low, high=high)


def _respondent_label(code: str) -> str:
    return str(TreatmentGuess.Respondent(code).label)


def report_view(report: dict[str, Any]) -> dict[str, Any]:
    """The chart and the table rows of a report: Bang's index per arm where the report has arms, else the pooled
    count of each answer."""
    rows: list[tuple[str, str, float, str]] = []
    table: list[dict[str, Any]] = []
    for timepoint in report["timepoints"]:
        for item in timepoint["respondents"]:
            heading = f"{timepoint['visit_code']} · {_respondent_label(item['respondent'])}"
            if report["arm_level"]:
                for arm, cell in item["by_arm"].items():
                    bang = cell["bang"]
                    if bang is not None:
                        rows.append((heading, arm, bang["value"], f"{bang['value']:.2f}"))
                    table.append({"heading": heading, "option": arm, **cell})
                table.append({"heading": heading, "option": None, "james": item["james"], "n": item["n"]})
            else:
                for option, count in item["pooled"].items():
                    rows.append((heading, option, float(count), str(count)))
                table.append({"heading": heading, "n": item["n"], "pooled": item["pooled"]})
    if report["arm_level"]:
        chart = bar_chart(rows, -1.0, 1.0)
    else:
        chart = bar_chart(rows, 0.0, max([r[2] for r in rows] or [1.0]))
    return {"chart": chart, "table": table}


@require_GET
@staff_page
def guesses(request: HttpRequest) -> HttpResponse:
    studies, study, sites = chosen_study(request)
    if study is None:
        return render(request, "dashboard/guesses/report.html", {"studies": []})
    report = guess_selectors.blinding_report(request.user, study)
    context = {"studies": studies, "study": study, "sites": sites, "report": report, **report_view(report)}
    return render(request, "dashboard/guesses/report.html", context)


def _guess_visits(request: HttpRequest, participant: Participant) -> tuple[dict[int, Visit], list[Visit]]:
    """The participant's visits where a guess is asked (by id, for the service) and as the viewer sees them (for the
    form: a blinded viewer gets only the visits the blinded schedule shows, under their neutral names)."""
    endpoints = guess_selectors.endpoint_codes(participant.study)
    lens = Lens(request.user)
    visits = lens.annotate(lens.shown(scheduling_selectors.visits_of(participant)))
    asked = [v for v in visits if v.kind == "dosing" or v.code in endpoints]
    return {v.pk: v for v in asked}, lens.present(lens.order(asked))


@require_http_methods(["GET", "POST"])
@staff_page
def participant_guesses(request: HttpRequest, participant_id: str) -> HttpResponse:
    participant = participant_selectors.participant_get(request.user, participant_id)
    by_pk, visits = _guess_visits(request, participant)
    respondents = guess_selectors.respondents_recordable(request.user, participant.site_id)
    options = [*participant_selectors.study_arm_codes(participant.study_id), TreatmentGuess.DONT_KNOW]
    errors: dict[str, list[str]] = {}
    message = ""
    status = 200
    values = {"visit": "", "respondent": "", "guess": "", "confidence": ""}
    if request.method == "POST":
        values = {name: request.POST.get(name, "").strip() for name in values}
        visit = next((by_pk[v.pk] for v in visits if str(v.pk) == values["visit"]), None)
        if visit is None:
            errors["visit"] = [_("Choose a dosing session or the endpoint visit of this participant.")]
        try:
            confidence = int(values["confidence"])
        except ValueError:
            errors["confidence"] = [_("A whole number from 0 to 100.")]
        if not errors and visit is not None:
            try:
                safety_services.guess_record(
                    participant=participant,
                    visit=visit,
                    respondent=values["respondent"],
                    guess=values["guess"],
                    confidence=confidence,
                    by=request.user,
                )
            except ServiceError as exc:
                message, errors, status = exc.message, exc.field_errors, exc.status_code
            else:
                return redirect(
                    reverse("dashboard-participant-guesses", args=[participant.participant_id]) + "?saved=1"
                )
        status = status if status != 200 else 400
    readable = guess_selectors.may_read_guesses(request.user, participant)
    recorded = (
        list(guess_selectors.guesses_for(request.user).filter(participant=participant).order_by("visit_id", "id"))
        if readable
        else []
    )
    context = {
        "participant": participant,
        "visits": visits,
        "respondents": [(code, _respondent_label(code)) for code in respondents],
        "options": options,
        "values": values,
        "errors": errors,
        "message": message,
        "saved": request.GET.get("saved") == "1" and request.method == "GET",
        "readable": readable,
        "recorded": recorded,
    }
    return render(request, "dashboard/guesses/participant.html", context, status=status)
