"""The medications page of a participant: their concomitant medications, the ones their protocol prohibits flagged
with the washout's end, and the forms to record, correct (with a reason) and stop one. Each form calls the same
service, with the same role check, as the API.

Another site's participant is a 404; so is the page, to an independent rater, of a participant whose study hides
safety data from raters (as adverse events are). A role that may not record sees the list without the forms."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from dashboard.medication_forms import MedicationCorrectForm, MedicationForm, MedicationStopForm
from dashboard.views import staff_page
from participants import access
from participants import selectors as participant_selectors
from participants.models import Participant
from safety import selectors as safety_selectors
from safety import services as safety_services
from safety.medication_classes import medication_classes
from safety.models import ConcomitantMedication
from safety.washout import washout_end
from trialsite.errors import ServiceError
from trialsite.roles import MANAGE, Role

TEMPLATE = "dashboard/participant/medications.html"
RECORDERS = MANAGE | {Role.THERAPIST}
_FIELDS = (
    "name",
    "medication_class",
    "dose_amount",
    "dose_unit",
    "dose_text",
    "frequency",
    "route",
    "indication",
    "start_date",
    "stop_date",
    "taper_note",
)


@dataclass
class Row:
    medication: ConcomitantMedication
    class_label: str
    prohibited: bool
    washout_days: int | None
    washout_ends: dt.date | None
    blocks_today: bool


def _participant(request: HttpRequest, participant_id: str) -> Participant:
    participant = participant_selectors.participant_get(request.user, participant_id)  # another site's: 404
    if access.safety_hidden_from(request.user, site_id=participant.site_id, study=participant.study):
        raise Http404("no such participant")  # hidden from a rater as adverse events are: as if it did not exist
    return participant


def _page_url(participant: Participant) -> str:
    return reverse("dashboard-medications", args=[participant.participant_id])


def _rows(request: HttpRequest, participant: Participant) -> list[Row]:
    classes = medication_classes()
    washouts = safety_selectors.prohibited_washouts(participant)
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(participant.site.time_zone)).date()
    rows = []
    for m in safety_selectors.medications_of(request.user, participant.pk):
        days = washouts.get(m.medication_class)
        end = washout_end(m.stop_date, days) if days is not None else None
        rows.append(
            Row(
                medication=m,
                class_label=classes.label(m.medication_class),
                prohibited=days is not None,
                washout_days=days,
                washout_ends=end,
                blocks_today=days is not None and (end is None or today <= end),
            )
        )
    return rows


def _service_errors(form: forms.Form, exc: ServiceError) -> None:
    form.add_error(None, exc.message)
    for key, problems in exc.field_errors.items():
        for problem in problems:
            form.add_error(key if key in form.fields else None, problem if key in form.fields else f"{key}: {problem}")


def _may_record(request: HttpRequest, participant: Participant) -> bool:
    return access.has_role(request.user, participant.site_id, RECORDERS)


def _refused(request: HttpRequest, participant: Participant) -> HttpResponse:
    """A role that may not record gets the list, the service's refusal and no form (403)."""
    message = _("Your role cannot record concomitant medications at this site.")
    return _render(request, participant, status=403, refused=message)


def _render(request: HttpRequest, participant: Participant, status: int = 200, **context: Any) -> HttpResponse:
    may_record = _may_record(request, participant)
    base = {
        "participant": participant,
        "rows": _rows(request, participant),
        "may_record": may_record,
        "page_url": _page_url(participant),
        "participant_url": reverse("dashboard-participant", args=[participant.participant_id]),
    }
    return render(request, TEMPLATE, base | context, status=status)


def _submit(
    request: HttpRequest, participant: Participant, bound: forms.Form, perform: Any, /, **context: Any
) -> HttpResponse:
    """Validate the form, call the service and redirect to the page with its message; else the page again with the
    messages (400, or the service's status: 403, 409), nothing saved."""
    status = 400
    if bound.is_valid():
        try:
            done = perform(bound.cleaned_data)
        except ServiceError as exc:
            _service_errors(bound, exc)
            status = exc.status_code
        else:
            messages.success(request, done)
            return redirect(_page_url(participant))
    return _render(request, participant, status=status, **context)


def _values(cleaned: dict[str, Any]) -> dict[str, Any]:
    values = {name: cleaned.get(name) for name in _FIELDS}
    for name in ("dose_unit", "dose_text", "frequency", "route", "indication", "taper_note"):
        values[name] = values[name] or ""
    return values


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def medications(request: HttpRequest, participant_id: str) -> HttpResponse:
    participant = _participant(request, participant_id)
    if request.method == "POST" and not _may_record(request, participant):
        return _refused(request, participant)
    form = MedicationForm(request.POST if request.method == "POST" else None)
    if request.method != "POST":
        return _render(request, participant, form=form)

    def perform(cleaned: dict[str, Any]) -> str:
        medication = safety_services.medication_record(participant=participant, by=request.user, **_values(cleaned))
        return _("%(name)s recorded.") % {"name": medication.name}

    return _submit(request, participant, form, perform, form=form)


def _medication(request: HttpRequest, participant: Participant, medication_id: int) -> ConcomitantMedication:
    medication = safety_selectors.medication_get(request.user, medication_id)
    if medication.participant_id != participant.pk:
        raise Http404("not a medication of this participant")
    return medication


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def medication_correct(request: HttpRequest, participant_id: str, medication_id: int) -> HttpResponse:
    participant = _participant(request, participant_id)
    medication = _medication(request, participant, medication_id)
    if not _may_record(request, participant):
        return _refused(request, participant)
    initial = {name: getattr(medication, name) for name in _FIELDS}
    form = MedicationCorrectForm(request.POST if request.method == "POST" else None, initial=initial)
    context = {"correct_form": form, "editing": medication}
    if request.method != "POST":
        return _render(request, participant, **context)

    def perform(cleaned: dict[str, Any]) -> str:
        changes = {name: value for name, value in _values(cleaned).items() if value != initial[name]}
        safety_services.medication_correct(medication=medication, reason=cleaned["reason"], by=request.user, **changes)
        return _("%(name)s corrected.") % {"name": medication.name}

    return _submit(request, participant, form, perform, **context)


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def medication_stop(request: HttpRequest, participant_id: str, medication_id: int) -> HttpResponse:
    participant = _participant(request, participant_id)
    medication = _medication(request, participant, medication_id)
    if not _may_record(request, participant):
        return _refused(request, participant)
    form = MedicationStopForm(request.POST if request.method == "POST" else None)
    context = {"stop_form": form, "stopping": medication}
    if request.method != "POST":
        return _render(request, participant, **context)

    def perform(cleaned: dict[str, Any]) -> str:
        safety_services.medication_stop(
            medication=medication,
            stop_date=cleaned["stop_date"],
            taper_note=cleaned.get("taper_note") or "",
            by=request.user,
        )
        return _("%(name)s stopped.") % {"name": medication.name}

    return _submit(request, participant, form, perform, **context)
