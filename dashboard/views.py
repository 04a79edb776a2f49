"""Staff pages: sign-in, the home page's worklists, the staff member's language, and the actions taken from the
worklists. Pages read through the owning apps' selectors and write through their services; who may do what is
decided by participants.access and the services, never here."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone, translation
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assessments import selectors as assessment_selectors
from assessments import services as assessment_services
from dashboard import worklist_rows, worklists
from dashboard.forms import LanguageForm, StaffLoginForm, holds_a_site_role
from notifications import selectors as notification_selectors
from notifications import services as notification_services
from participants import access
from participants import selectors as participant_selectors
from participants import services as participant_services
from participants.models import Site, Study
from trialsite.errors import ServiceError

View = Callable[..., HttpResponseBase]


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def staff_page(view: View) -> View:
    """A page for signed-in staff with a role at a site (or a superuser), shown in the language they chose. Anyone
    else goes to the sign-in page; an htmx request is told to go there rather than getting it as a fragment."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user = request.user
        if not user.is_authenticated or not holds_a_site_role(user):
            if _is_htmx(request):
                return HttpResponse(status=204, headers={"HX-Redirect": reverse("login")})
            return redirect_to_login(request.get_full_path())
        language = participant_selectors.staff_language(user)
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return view(request, *args, **kwargs)

    return wrapped


@require_GET
def root(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and holds_a_site_role(request.user):
        return redirect("dashboard-home")
    return redirect("login")


class LoginView(auth_views.LoginView):
    template_name = "dashboard/login.html"
    authentication_form = StaffLoginForm


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "dashboard/password_change.html"
    success_url = reverse_lazy("password_change_done")

    @method_decorator(staff_page)
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return super().dispatch(request, *args, **kwargs)


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "dashboard/password_change_done.html"

    @method_decorator(staff_page)
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return super().dispatch(request, *args, **kwargs)


@staff_page
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    now = timezone.now()
    lists = worklists.home_worklists(user, now, request.GET)
    opened = next(wl for wl in lists if wl.page is not None)
    send_site_ids = access.managed_site_ids(user)
    # Sites where the user may acknowledge an alert: the button shows there only (the service checks again).
    acknowledge_site_ids = access.site_ids_with(user, access.INVESTIGATORS)
    # Questionnaires held for want of validated wording in the participant's language, for the rows shown.
    held = (
        assessment_selectors.held_by_visit({v.pk for v in opened.page}, now=now)
        if opened.kind == "questionnaire" and opened.page is not None
        else {}
    )
    context = {
        "worklists": lists,
        "opened": opened,
        # Rows are written in Python (dashboard/worklist_rows.py): a template per row would cost more than the rest
        # of the page.
        "rows": worklist_rows.rows(
            opened,
            send_site_ids=send_site_ids,
            acknowledge_site_ids=acknowledge_site_ids,
            csrf_token=get_token(request),
            home=worklists.list_url(opened.key),
            held=held,
        ),
        # The "new participant" page is linked for those who manage participants at one of their sites.
        "may_create_participants": bool(send_site_ids),
    }
    return render(request, "dashboard/home.html", context)


def _next_url(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def language(request: HttpRequest) -> HttpResponse:
    """The language of the staff pages, kept per user (participants.StaffProfile)."""
    current = translation.get_language() or "en"
    form = LanguageForm(request.POST or None, initial={"language": current})
    if request.method == "POST" and form.is_valid():
        try:
            participant_services.staff_language_set(
                user=request.user,  # type: ignore[arg-type]  # staff_page lets signed-in users only
                language=form.cleaned_data["language"],
                by=request.user,
            )
        except ServiceError as exc:
            form.add_error("language", exc.message)
        else:
            translation.activate(form.cleaned_data["language"])
            messages.success(request, _("Language saved."))
            return redirect(_next_url(request, reverse("dashboard-language")))
    return render(request, "dashboard/language.html", {"form": form}, status=400 if form.errors else 200)


def _after_action(request: HttpRequest, *, row: SafeString, done: str, error: str | None, anchor: str) -> HttpResponse:
    """htmx swaps the returned row in place; a plain form post is redirected back to the home page's list (the
    ``anchor``) with a message."""
    if _is_htmx(request):
        return HttpResponse(row)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done)
    return redirect(f"{worklists.list_url(anchor)}#{anchor}")


@staff_page
@require_POST
def alert_acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = assessment_selectors.safety_alert_get(request.user, alert_id)  # another site's alert: 404
    error = None
    try:
        alert = assessment_services.safety_alert_acknowledge(
            alert=alert, note=request.POST.get("note", ""), by=request.user
        )
    except ServiceError as exc:
        error = exc.message
    may_acknowledge = alert.participant.site_id in access.site_ids_with(request.user, access.INVESTIGATORS)
    return _after_action(
        request,
        row=worklist_rows.alert_row(alert, may_acknowledge=may_acknowledge, csrf_token=get_token(request), error=error),
        done=_("Alert acknowledged."),
        error=error,
        anchor="alerts",
    )


@staff_page
@require_POST
def notification_retry(request: HttpRequest, notification_id: int) -> HttpResponse:
    row = notification_selectors.notification_get(request.user, notification_id)  # another site's message: 404
    error = None
    try:
        row = notification_services.notification_retry(
            notification=row, by=request.user, reason=request.POST.get("reason", "").strip() or None
        )
    except ServiceError as exc:
        error = exc.message
    return _after_action(
        request,
        row=worklist_rows.notification_row(row, csrf_token=get_token(request), error=error),
        done=_("The message will be sent again."),
        error=error,
        anchor="failed",
    )


def chosen_study(request: HttpRequest) -> tuple[list[Study], Study | None, list[Site]]:
    """For the pages that show one study at a time (the matrix, the overview): the studies of the user's sites, the
    one ``?study=`` names (the first by default; a study elsewhere is a 404), and its sites among the user's. No
    study at all: ``([], None, [])``."""
    studies = list(participant_selectors.studies_for(request.user))
    if not studies:
        return [], None, []
    code = request.GET.get("study") or studies[0].code
    study = next((s for s in studies if s.code == code), None)
    if study is None:
        raise Http404("no such study at your sites")
    return studies, study, list(participant_selectors.matrix_sites(request.user, study))
