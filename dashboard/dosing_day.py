"""The dosing-day screen of a dosing visit, made for a tablet in the session room: the kit and the doses, who is
present, the vital-signs grid by the protocol's declared timepoints (missing ones and values over a threshold marked
in words), the alerts the vital signs raised, and the forms to open the session, record the doses, record and correct
a vital sign, and close the session. Each form calls the same service, with the same role check, as the API; a
service's refusal lands on the form's fields (400, 403 or 409), nothing saved and nothing typed lost.

Another site's visit is a 404; so is the page, to an independent rater, of a participant whose study hides safety data
from raters (as adverse events are). The doses are never shown to an always-blinded role (as the API hides them). A
role that may not record sees the screen without the forms. Also the list of dosing sessions at the user's sites."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from dashboard.dosing_forms import CloseForm, DosesForm, OpenForm, VitalSignCorrectForm, VitalSignForm
from dashboard.views import staff_page
from participants import access
from participants import selectors as participant_selectors
from safety import selectors as safety_selectors
from safety import services as safety_services
from safety.models import VITAL_MEASURES, DosingSession, VitalSign
from scheduling import selectors as scheduling_selectors
from scheduling.models import Visit
from scheduling.protocol import VisitKind
from trialsite.errors import ServiceError
from trialsite.roles import ALWAYS_BLINDED, MANAGE, Role

TEMPLATE = "dashboard/dosing/day.html"
LIST_TEMPLATE = "dashboard/dosing/list.html"
PAGE_SIZE = 25
RECORDERS = MANAGE | {Role.THERAPIST}  # as the dosing services allow


@dataclass
class Cell:
    value: Any
    over: list[str]  # the thresholds the value crosses, described ("> 160")


@dataclass
class Row:
    code: str
    label: str
    minutes: int | None
    vital: VitalSign | None
    cells: list[Cell]

    @property
    def flagged(self) -> bool:
        return any(c.over for c in self.cells)


def _visit(request: HttpRequest, visit_id: int) -> Visit:
    visit = scheduling_selectors.visit_get(request.user, visit_id)  # another site's: 404
    participant = visit.participant
    if visit.kind != VisitKind.DOSING:
        raise Http404("not a dosing visit")
    if access.safety_hidden_from(request.user, site_id=participant.site_id, study=participant.study):
        raise Http404("no such visit")  # hidden from a rater as adverse events are: as if it did not exist
    return visit


def _session(request: HttpRequest, visit: Visit) -> DosingSession | None:
    found = safety_selectors.dosing_sessions_for(request.user).filter(visit_id=visit.pk).values_list("pk", flat=True)
    pk = found.first()
    return safety_selectors.dosing_session_get(request.user, pk) if pk is not None else None


def _zone(visit: Visit) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(visit.participant.site.time_zone)


def _page_url(visit: Visit) -> str:
    return reverse("dashboard-dosing-day", args=[visit.pk])


def _may_record(request: HttpRequest, visit: Visit) -> bool:
    return access.has_role(request.user, visit.participant.site_id, RECORDERS)


def _doses_hidden(request: HttpRequest, visit: Visit) -> bool:
    return visit.participant.site_id in access.site_ids_with(request.user, ALWAYS_BLINDED)


def _staff_choices(visit: Visit) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for membership in participant_selectors.memberships_at(visit.participant.site):
        user = membership.user
        if user.is_active and user.username not in seen:
            seen[user.username] = user.get_full_name() or user.username
    return list(seen.items())


def _rows(view: safety_selectors.DosingView) -> list[Row]:
    thresholds = view.declaration.thresholds if view.declaration else ()
    rows = []
    for grid_row in view.grid:
        vital = grid_row.vital
        cells = []
        for measure in VITAL_MEASURES:
            value = getattr(vital, measure) if vital is not None else None
            over = [
                f"{rule.comparison} {rule.value:g}"
                for rule in thresholds
                if rule.measure == measure and rule.crossed_by(value)
            ]
            cells.append(Cell(value, over))
        t = grid_row.timepoint
        rows.append(
            Row(
                code=t.code if t else "",
                label=t.label if t else _("Unscheduled"),
                minutes=t.minutes if t else None,
                vital=vital,
                cells=cells,
            )
        )
    return rows


def _vital_form(visit: Visit, view: Any, data: Any = None, **kwargs: Any) -> VitalSignForm:
    missing = set(view.missing) if view else set()
    declared = view.declaration.timepoints if view and view.declaration else ()
    choices = [(t.code, f"{t.code}: {t.label}") for t in declared if t.code in missing]
    return VitalSignForm(data, zone=_zone(visit), timepoints=choices, **kwargs)


def _render(request: HttpRequest, visit: Visit, status: int = 200, **context: Any) -> HttpResponse:
    session = _session(request, visit)
    view = safety_selectors.dosing_view(session) if session is not None else None
    zone = _zone(visit)
    may_record = _may_record(request, visit)
    base: dict[str, Any] = {
        "visit": visit,
        "participant": visit.participant,
        "session": session,
        "view": view,
        "rows": _rows(view) if view else [],
        "declaration": view.declaration if view else scheduling_selectors.visit_dosing_declaration(visit),
        "site_zone": zone,
        "may_record": may_record,
        "doses_hidden": _doses_hidden(request, visit),
        "page_url": _page_url(visit),
        "participant_url": reverse("dashboard-participant", args=[visit.participant.participant_id]),
        "alerts_url": f"{reverse('dashboard-home')}?list=alerts#alerts",
        # Short headings for a narrow grid, each with its full name.
        "measures": [
            ("SBP", _("Systolic blood pressure (mmHg)")),
            ("DBP", _("Diastolic blood pressure (mmHg)")),
            ("HR", _("Heart rate (per minute)")),
            ("°C", _("Temperature (°C)")),
        ],
    }
    if may_record and session is None:
        base["open_form"] = OpenForm(zone=zone, staff=_staff_choices(visit))
    elif may_record and session is not None:
        assert view is not None  # a session has its view
        if not base["doses_hidden"]:
            base["doses_form"] = DosesForm(zone=zone, initial={f: getattr(session, f) for f in _DOSE_FIELDS})
        if session.closed_at is None:
            base["vital_form"] = _vital_form(
                visit, view, initial={"timepoint_code": request.GET.get("timepoint") or next(iter(view.missing), "")}
            )
            base["close_form"] = CloseForm(zone=zone)
        correct = request.GET.get("correct", "")
        if correct.isdigit() and "correct_form" not in context:
            vital = next((v for v in session.vital_signs.all() if v.pk == int(correct)), None)
            if vital is not None:
                context["correcting"] = vital
                context["correct_form"] = _correct_form(visit, view, vital)
    return render(request, TEMPLATE, base | context, status=status)


_DOSE_FIELDS = ("initial_dose_mg", "initial_dose_at", "supplemental_dose_mg", "supplemental_dose_at")


def _correct_form(visit: Visit, view: Any, vital: VitalSign, data: Any = None) -> VitalSignCorrectForm:
    declared = view.declaration.timepoints if view and view.declaration else ()
    free = set(view.missing) | {vital.timepoint_code} if view else {vital.timepoint_code}
    choices = [(t.code, f"{t.code}: {t.label}") for t in declared if t.code in free]
    initial = {name: getattr(vital, name) for name in ("timepoint_code", "measured_at", *VITAL_MEASURES, "note")}
    return VitalSignCorrectForm(data, zone=_zone(visit), timepoints=choices, initial=initial)


def _service_errors(form: forms.Form, exc: ServiceError) -> None:
    form.add_error(None, exc.message)
    for key, problems in exc.field_errors.items():
        for problem in problems:
            form.add_error(key if key in form.fields else None, problem if key in form.fields else f"{key}: {problem}")


def _refused(request: HttpRequest, visit: Visit) -> HttpResponse:
    message = _("Your role cannot record dosing sessions at this site.")
    return _render(request, visit, status=403, refused=message)


def _submit(request: HttpRequest, visit: Visit, form: forms.Form, perform: Any, /, **context: Any) -> HttpResponse:
    """Validate the form, call the service and go back to the screen with its message; else the screen again with
    the messages on the fields (400, or the service's status: 403, 409) and what was typed, nothing saved."""
    status = 400
    if form.is_valid():
        try:
            done = perform(form.cleaned_data)
        except ServiceError as exc:
            _service_errors(form, exc)
            status = exc.status_code
        else:
            messages.success(request, done)
            return redirect(_page_url(visit))
    return _render(request, visit, status=status, **context)


def _open_session(request: HttpRequest, visit: Visit) -> DosingSession:
    session = _session(request, visit)
    if session is None:
        raise Http404("no dosing session opened for this visit")
    return session


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def dosing_day(request: HttpRequest, visit_id: int) -> HttpResponse:
    """The screen; a POST opens the session."""
    visit = _visit(request, visit_id)
    if request.method != "POST":
        return _render(request, visit)
    if not _may_record(request, visit):
        return _refused(request, visit)
    if _session(request, visit) is not None:
        return _render(request, visit, status=409, refused=_("This visit's dosing session is already open."))
    form = OpenForm(request.POST, zone=_zone(visit), staff=_staff_choices(visit))

    def perform(cleaned: dict[str, Any]) -> str:
        staff = participant_selectors.active_staff_at_site(visit.participant.site, cleaned["present_staff"])
        safety_services.dosing_session_open(
            visit=visit,
            kit_identifier=cleaned["kit_identifier"],
            started_at=cleaned.get("started_at"),
            present_staff=list(staff.values()),
            present_others=cleaned["present_others"],
            by=request.user,
        )
        return _("The dosing session is open.")

    return _submit(request, visit, form, perform, open_form=form)


@staff_page
@require_http_methods(["POST"])
def dosing_doses(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = _visit(request, visit_id)
    session = _open_session(request, visit)
    if not _may_record(request, visit) or _doses_hidden(request, visit):
        return _refused(request, visit)
    form = DosesForm(request.POST, zone=_zone(visit))

    def perform(cleaned: dict[str, Any]) -> str:
        values = {name: cleaned.get(name) for name in _DOSE_FIELDS}
        safety_services.dosing_doses_record(
            session=session, reason=cleaned.get("reason") or "", by=request.user, **values
        )
        return _("The doses are recorded.")

    return _submit(request, visit, form, perform, doses_form=form)


@staff_page
@require_http_methods(["POST"])
def dosing_vital(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = _visit(request, visit_id)
    session = _open_session(request, visit)
    if not _may_record(request, visit):
        return _refused(request, visit)
    form = _vital_form(visit, safety_selectors.dosing_view(session), request.POST)

    def perform(cleaned: dict[str, Any]) -> str:
        vital = safety_services.vital_sign_record(session=session, by=request.user, **form.values())
        return _("Vital signs recorded at %(at)s.") % {"at": vital.timepoint_code or _("an unscheduled time")}

    return _submit(request, visit, form, perform, vital_form=form)


@staff_page
@require_http_methods(["POST"])
def dosing_vital_correct(request: HttpRequest, visit_id: int, vital_id: int) -> HttpResponse:
    visit = _visit(request, visit_id)
    session = _open_session(request, visit)
    vital = next((v for v in session.vital_signs.all() if v.pk == vital_id), None)
    if vital is None:
        raise Http404("not a vital sign of this session")
    if not _may_record(request, visit):
        return _refused(request, visit)
    form = _correct_form(visit, safety_selectors.dosing_view(session), vital, request.POST)

    def perform(cleaned: dict[str, Any]) -> str:
        values = form.values()
        changes = {name: value for name, value in values.items() if value != getattr(vital, name)}
        if "note" in changes and (changes["note"] or "") == vital.note:
            changes.pop("note")
        safety_services.vital_sign_correct(vital_sign=vital, reason=cleaned["reason"], by=request.user, **changes)
        return _("The vital signs are corrected.")

    return _submit(request, visit, form, perform, correct_form=form, correcting=vital)


@staff_page
@require_http_methods(["POST"])
def dosing_close(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = _visit(request, visit_id)
    session = _open_session(request, visit)
    if not _may_record(request, visit):
        return _refused(request, visit)
    form = CloseForm(request.POST, zone=_zone(visit))

    def perform(cleaned: dict[str, Any]) -> str:
        safety_services.dosing_session_close(
            session=session,
            ended_at=cleaned.get("ended_at"),
            missing_timepoints_reason=cleaned.get("missing_timepoints_reason") or "",
            by=request.user,
        )
        return _("The dosing session is closed.")

    return _submit(request, visit, form, perform, close_form=form)


@staff_page
@require_http_methods(["GET", "HEAD"])
def dosing_sessions(request: HttpRequest) -> HttpResponse:
    """The dosing sessions at the user's sites, most recent first, a page at a time (the same reads per page)."""
    qs = safety_selectors.dosing_sessions_for(request.user).order_by("-started_at", "-id")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, LIST_TEMPLATE, {"page": page})
