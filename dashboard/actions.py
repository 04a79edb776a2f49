"""The participant page's actions: each a small page with one form that calls the same service, with the same
arguments and the same role check, as the API endpoint of that action.

- Another site's participant, visit, questionnaire or response is a 404 (the selectors are scoped by user), before
  anything else is looked at.
- A role that may not act gets the check's message (a 403) and no form; the page links an action only where the
  role may take it, and the service checks again.
- Bad input re-renders the form with a message per field (400); a refusal by the service shows its message next to
  the form with its status (400, 403, or 409 for a booking conflict). Nothing typed is lost; nothing is saved.
- Success redirects to the participant page at the section acted on, with a message (post/redirect/get).
- A blinded viewer who randomizes never gets the arm: not in the message, not on the page.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from assessments import selectors as assessment_selectors
from assessments import services as assessment_services
from dashboard import action_forms
from dashboard.views import staff_page
from participants import access
from participants import selectors as participant_selectors
from participants import services as participant_services
from participants.demographics import form_as_dict
from participants.models import Participant
from scheduling import selectors as scheduling_selectors
from scheduling import services as scheduling_services
from scheduling.models import Visit
from trialsite.errors import PermissionDeniedError, ServiceError
from trialsite.roles import MANAGE, SCHEDULE, Role

TEMPLATE = "dashboard/participant/action.html"

Perform = Callable[[dict[str, Any]], str]


@dataclass
class Action:
    """What the action page says about itself."""

    title: str
    submit: str
    back: str  # where "back" and success lead
    about: str = ""
    danger: bool = False
    participant: Participant | None = None
    visit: Visit | None = None


def participant_url(participant: Participant, anchor: str) -> str:
    return f"{reverse('dashboard-participant', args=[participant.participant_id])}#{anchor}"


def _service_errors(form: forms.Form, exc: ServiceError, field_for: Callable[[str], str | None]) -> None:
    """The service's message above the form, and each of its field messages at the field the form calls so (or
    above the form, named, where the form has no such field)."""
    form.add_error(None, exc.message)
    for key, problems in exc.field_errors.items():
        name = field_for(key)
        for problem in problems:
            if name is not None and name in form.fields:
                form.add_error(name, problem)
            else:
                form.add_error(None, f"{key}: {problem}")


def _same_name(form: forms.Form) -> Callable[[str], str | None]:
    return lambda key: key if key in form.fields else None


def _run(
    request: HttpRequest,
    action: Action,
    form: forms.Form,
    perform: Perform,
    *,
    field_for: Callable[[str], str | None] | None = None,
    refused: ServiceError | None = None,
) -> HttpResponse:
    """GET shows the form; POST validates it, calls ``perform`` (one service) and redirects with its message."""
    context: dict[str, Any] = {"action": action, "form": form, "refused": refused}
    if refused is not None:
        return render(request, TEMPLATE, context, status=refused.status_code)
    if request.method != "POST":
        return render(request, TEMPLATE, context)
    status = 400
    if form.is_valid():
        try:
            done = perform(form.cleaned_data)
        except ServiceError as exc:
            _service_errors(form, exc, field_for or _same_name(form))
            status = exc.status_code
        except DjangoValidationError as exc:  # a model's own check (full_clean) inside the service
            for key, problems in (exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}).items():
                for problem in problems:
                    form.add_error(key if key in form.fields else None, problem)
        else:
            messages.success(request, done)
            return redirect(action.back)
    return render(request, TEMPLATE, context, status=status)


def _refusal(check: Callable[[], None]) -> ServiceError | None:
    try:
        check()
    except ServiceError as exc:
        return exc
    return None


def _zone(site: Any) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(site.time_zone)


def _data(request: HttpRequest) -> Any:
    return request.POST if request.method == "POST" else None


# --- creating a participant ---------------------------------------------------------------------------------------


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def participant_new(request: HttpRequest) -> HttpResponse:
    user = request.user
    sites = list(participant_selectors.sites_managed(user))
    contact = any(access.can_see_contact(user, s.pk) for s in sites)
    form = action_forms.ParticipantCreateForm(_data(request), sites=sites, contact=contact)
    action = Action(
        title=_("New participant"),
        submit=_("Create participant"),
        back=reverse("dashboard-home"),
        about=_("The participant gets the next number of the study at the site; screening starts now."),
    )
    refused = None if sites else PermissionDeniedError(_("Your role cannot add participants at any site."))

    def perform(values: dict[str, Any]) -> str:
        site = next(s for s in sites if s.code == values["site"])
        study = participant_selectors.study_by_code(values["study"])
        if study is None:
            raise ServiceError(f"unknown study {values['study']!r}", field_errors={"study": ["unknown study"]})
        access.require_role(user, site.pk, MANAGE, "change participants")
        participant = participant_services.participant_create(
            study=study,
            site=site,
            by=user,
            # Contact details only from a role that may see them at the chosen site.
            contact=form.contact() if access.can_see_contact(user, site.pk) else None,
            stratum=values.get("stratum", ""),
        )
        action.back = participant_url(participant, "summary")
        return _("Participant %(id)s created.") % {"id": participant.participant_id}

    return _run(request, action, form, perform, refused=refused)


# --- participant actions ------------------------------------------------------------------------------------------


def _participant(request: HttpRequest, participant_id: str) -> tuple[Participant, ServiceError | None]:
    """The participant (another site's: 404) and, for a role that may not manage participants, the API's refusal."""
    participant = participant_selectors.participant_get(request.user, participant_id)
    refused = _refusal(lambda: access.require_role(request.user, participant.site_id, MANAGE, "change participants"))
    return participant, refused


def _participant_action(participant: Participant, title: str, submit: str, anchor: str, **kwargs: Any) -> Action:
    return Action(
        title=title, submit=submit, back=participant_url(participant, anchor), participant=participant, **kwargs
    )


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def eligibility(request: HttpRequest, participant_id: str) -> HttpResponse:
    participant, refused = _participant(request, participant_id)
    answers = {a.criterion.code: a.answer for a in participant_selectors.eligibility_answers_of(participant)}
    form = action_forms.EligibilityForm(
        _data(request),
        criteria=participant_selectors.current_criteria_of(participant.study),
        answers=answers,
    )
    action = _participant_action(participant, _("Record eligibility"), _("Save answers"), "eligibility")

    def perform(values: dict[str, Any]) -> str:
        participant_services.eligibility_record(
            participant=participant,
            answers=form.answers(),
            by=request.user,
            override=form.override(),
            reason=values.get("reason") or None,
        )
        return _("Eligibility recorded.")

    return _run(request, action, form, perform, field_for=form.field_for, refused=refused)


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def consent(request: HttpRequest, participant_id: str) -> HttpResponse:
    participant, refused = _participant(request, participant_id)
    versions = [d.version for d in participant_selectors.consent_documents_of(participant.study)]
    form = action_forms.ConsentForm(
        _data(request), versions=versions, zone=_zone(participant.site), initial={"signed_at": timezone.now()}
    )
    action = _participant_action(participant, _("Record consent"), _("Record consent"), "summary")

    def perform(values: dict[str, Any]) -> str:
        participant_services.consent_record(
            participant=participant,
            version=values["version"],
            signed_at=values["signed_at"],
            by=request.user,
            obtained_by=request.user,
        )
        return _("Consent on version %(version)s recorded.") % {"version": values["version"]}

    return _run(request, action, form, perform, refused=refused)


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def enroll(request: HttpRequest, participant_id: str) -> HttpResponse:
    participant, refused = _participant(request, participant_id)
    form = action_forms.EnrollForm(_data(request))
    action = _participant_action(
        participant,
        _("Enroll"),
        _("Enroll"),
        "summary",
        about=_("Enrollment needs a signed consent on the current version."),
    )

    def perform(values: dict[str, Any]) -> str:
        participant_services.participant_enroll(participant=participant, by=request.user)
        return _("Participant enrolled.")

    return _run(request, action, form, perform, refused=refused)


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def randomize(request: HttpRequest, participant_id: str) -> HttpResponse:
    participant, refused = _participant(request, participant_id)
    form = action_forms.RandomizeForm(_data(request))
    action = _participant_action(
        participant,
        _("Randomize"),
        _("Randomize"),
        "summary",
        danger=True,
        about=_("The participant takes the next free slot of the allocation list in their stratum."),
    )

    def perform(values: dict[str, Any]) -> str:
        slot = participant_services.participant_randomize(
            participant=participant, by=request.user, stratum=values.get("stratum") or None
        )
        # The arm is named only to a viewer who may see it; a blinded one learns that it happened, nothing more.
        if access.can_see_allocation(request.user, site_id=participant.site_id, study=participant.study):
            return _("Participant randomized to %(arm)s.") % {"arm": slot.arm.label}
        return _("Participant randomized.")

    return _run(request, action, form, perform, refused=refused)


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def withdraw(request: HttpRequest, participant_id: str) -> HttpResponse:
    participant, refused = _participant(request, participant_id)
    today = timezone.now().astimezone(_zone(participant.site)).date()
    form = action_forms.WithdrawForm(_data(request), initial={"date": today})
    action = _participant_action(
        participant,
        _("Withdraw"),
        _("Withdraw"),
        "summary",
        danger=True,
        about=_(
            "Stop contact keeps the visits (follow-up continues from records); stop follow-up and stop data use "
            "cancel every visit that has not taken place."
        ),
    )

    def perform(values: dict[str, Any]) -> str:
        participant_services.participant_withdraw(
            participant=participant,
            level=values["level"],
            reason=values["reason"],
            date=values["date"],
            by=request.user,
        )
        return _("Participant withdrawn.")

    return _run(request, action, form, perform, refused=refused)


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def demographics(request: HttpRequest, participant_id: str) -> HttpResponse:
    participant, refused = _participant(request, participant_id)
    form_def = form_as_dict(participant_selectors.demographic_form_active(), get_language() or "en")
    record = participant_selectors.demographics_of(participant)
    form = action_forms.DemographicsForm(
        _data(request), fields=form_def["fields"], answers=dict(record.answers) if record is not None else {}
    )
    action = _participant_action(
        participant,
        _("Demographics"),
        _("Save demographics"),
        "summary",
        about=_("Baseline covariates for the analysis: age in whole years (never a date of birth) and categories."),
    )

    def perform(values: dict[str, Any]) -> str:
        participant_services.demographics_record(
            participant=participant, answers=form.answers(), reason=values.get("reason") or None, by=request.user
        )
        return _("Demographics saved.")

    return _run(
        request,
        action,
        form,
        perform,
        field_for=lambda key: "reason" if key == "reason" else f"field_{key.removeprefix('answers.')}",
        refused=refused,
    )


# --- visit actions ------------------------------------------------------------------------------------------------


def _visit(request: HttpRequest, visit_id: int, roles: frozenset[str], what: str) -> tuple[Visit, ServiceError | None]:
    visit = scheduling_selectors.visit_get(request.user, visit_id)  # another site's visit: 404
    refused = _refusal(lambda: access.require_role(request.user, visit.participant.site_id, roles, what))
    return visit, refused


def _visit_action(visit: Visit, title: str, submit: str, **kwargs: Any) -> Action:
    return Action(
        title=f"{title}: {visit.name} ({visit.code})",
        submit=submit,
        back=participant_url(visit.participant, f"visit-{visit.code}"),
        participant=visit.participant,
        visit=visit,
        **kwargs,
    )


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def visit_schedule(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit, refused = _visit(request, visit_id, SCHEDULE, "schedule visits")
    site = visit.participant.site
    reschedule = visit.status == Visit.Status.SCHEDULED
    staff: dict[str, list[str]] = {}
    for membership in participant_selectors.memberships_at(site):
        staff.setdefault(membership.user.username, []).append(str(Role(membership.role).label))
    form = action_forms.ScheduleForm(
        _data(request),
        zone=_zone(site),
        rooms=[room.name for room in scheduling_selectors.rooms_bookable_at(site.pk)],
        staff=[(name, f"{name} ({', '.join(roles)})") for name, roles in staff.items()],
        reschedule=reschedule,
        initial={
            "start": visit.scheduled_start,
            "end": visit.scheduled_end,
            "room": visit.room.name if visit.room is not None else "",
            "staff": [u.username for u in visit.staff.all()],
        },
    )
    action = _visit_action(visit, _("Reschedule") if reschedule else _("Schedule"), _("Save booking"))

    def perform(values: dict[str, Any]) -> str:
        room = scheduling_selectors.room_named(site.pk, values.get("room"))
        _booked, warnings = scheduling_services.visit_schedule(
            visit=visit,
            start=values["start"],
            end=values.get("end"),
            room=room,
            staff=values.get("staff", []),
            by=request.user,
            reason=values.get("reason") or None,
        )
        for warning in warnings:
            messages.warning(request, warning)
        done = _("Visit %(code)s rescheduled.") if reschedule else _("Visit %(code)s scheduled.")
        return done % {"code": visit.code}

    return _run(request, action, form, perform, refused=refused)


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def visit_complete(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit, refused = _visit(request, visit_id, MANAGE, "change visits")
    form = action_forms.CompleteForm(
        _data(request), zone=_zone(visit.participant.site), initial={"occurred_at": timezone.now()}
    )
    action = _visit_action(visit, _("Complete"), _("Mark as completed"))

    def perform(values: dict[str, Any]) -> str:
        scheduling_services.visit_complete(
            visit=visit, occurred_at=values["occurred_at"], by=request.user, reason=values.get("reason") or None
        )
        return _("Visit %(code)s completed.") % {"code": visit.code}

    return _run(request, action, form, perform, refused=refused)


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def visit_miss(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit, refused = _visit(request, visit_id, MANAGE, "change visits")
    form = action_forms.MissForm(_data(request))
    action = _visit_action(
        visit,
        _("Missed"),
        _("Mark as missed"),
        danger=True,
        about=_("A required protocol visit that is missed is also recorded as a protocol deviation."),
    )

    def perform(values: dict[str, Any]) -> str:
        scheduling_services.visit_miss(visit=visit, reason=values["reason"], by=request.user)
        return _("Visit %(code)s marked as missed.") % {"code": visit.code}

    return _run(request, action, form, perform, refused=refused)


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def visit_cancel(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit, refused = _visit(request, visit_id, MANAGE, "change visits")
    form = action_forms.CancelForm(_data(request))
    action = _visit_action(visit, _("Cancel"), _("Cancel the visit"), danger=True)

    def perform(values: dict[str, Any]) -> str:
        scheduling_services.visit_cancel(visit=visit, reason=values["reason"], by=request.user)
        return _("Visit %(code)s cancelled.") % {"code": visit.code}

    return _run(request, action, form, perform, refused=refused)


# --- questionnaires -----------------------------------------------------------------------------------------------


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def questionnaire_open(request: HttpRequest, participant_id: str, administration_id: int) -> HttpResponse:
    participant = participant_selectors.participant_get(request.user, participant_id)
    adm = assessment_selectors.administration_get(request.user, administration_id)
    if adm.participant_id != participant.pk:
        raise Http404("not this participant's questionnaire")
    refused = None
    if not access.can_manage(request.user, participant.site_id):  # as the API: the service does not ask
        refused = PermissionDeniedError("your role at this site cannot open questionnaires")
    form = action_forms.OpenEarlyForm(_data(request))
    action = _participant_action(
        participant,
        _("Open %(code)s early") % {"code": adm.instrument_code},
        _("Open now"),
        "questionnaires",
        about=_("The questionnaire can be answered from now on; it still closes with its window."),
    )

    def perform(values: dict[str, Any]) -> str:
        assessment_services.administration_open_early(administration=adm, by=request.user, reason=values["reason"])
        return _("%(code)s is open.") % {"code": adm.instrument_code}

    return _run(request, action, form, perform, refused=refused)


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def response_correct(request: HttpRequest, participant_id: str, response_id: int) -> HttpResponse:
    participant = participant_selectors.participant_get(request.user, participant_id)
    response = assessment_selectors.response_get(request.user, response_id)
    if response.participant_id != participant.pk:
        raise Http404("not this participant's response")
    form = action_forms.CorrectForm(_data(request), items=[(a.item_code, a.value) for a in response.answers.all()])
    action = _participant_action(
        participant,
        _("Correct %(code)s at %(visit)s") % {"code": response.instrument_code, "visit": response.visit.code},
        _("Save correction"),
        "questionnaires",
        about=_("The earlier value stays in the audit trail with your reason; the scores are computed again."),
    )

    def perform(values: dict[str, Any]) -> str:
        assessment_services.response_correct(
            response=response, answers=form.answers(), reason=values["reason"], by=request.user
        )
        return _("%(code)s corrected.") % {"code": response.instrument_code}

    def field_for(key: str) -> str | None:
        if key == "reason":
            return "reason"
        return "value" if key in (form.cleaned_data.get("item"), "answers") else None

    return _run(request, action, form, perform, field_for=field_for)
