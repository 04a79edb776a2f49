"""The staff member's own account: the second factor (enrolment at /login/two-factor/setup/, the code at
/login/two-factor/), API tokens (listed, issued once, revoked) and the personal calendar feed
(``/calendar/feed/<secret>.ics``); and the page a locked-out sign-in gets.

Every write goes through accounts.services, which audits it; secrets are shown once and never stored."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from urllib.parse import urlencode

import django_otp
from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.services import MAX_TOKEN_DAYS
from dashboard.links import qr_svg
from dashboard.views import staff_page
from scheduling import ical
from scheduling import selectors as scheduling_selectors
from trialsite.errors import ServiceError

# The key being enrolled lives in the session until a code confirms it.
PENDING_KEY_SESSION = "accounts_totp_pending_key"


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class TokenForm(forms.Form):
    days = forms.IntegerField(label=gettext_lazy("Valid for (days)"), min_value=1, max_value=MAX_TOKEN_DAYS)


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse("dashboard-home")


def _signed_in(request: HttpRequest) -> HttpResponseBase | None:
    if not request.user.is_authenticated:
        return redirect(f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}")
    return None


# --- The second factor --------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def second_factor(request: HttpRequest) -> HttpResponseBase:
    """The TOTP code after the password. A user with no device yet is sent to enrol one."""
    if (refused := _signed_in(request)) is not None:
        return refused
    user = request.user
    if not account_selectors.has_second_factor(user):
        return redirect(f"{reverse('login-second-factor-setup')}?{urlencode({'next': _safe_next(request)})}")
    if not account_selectors.second_factor_missing(user):
        return redirect(_safe_next(request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = account_services.totp_verify(user=user, code=form.cleaned_data["code"])
        if device is not None:
            django_otp.login(request, device)
            return redirect(_safe_next(request))
        form.add_error("code", _("That code is not right, or was used already. Enter the current code."))
    return render(request, "dashboard/account/second_factor.html", {"form": form, "next": _safe_next(request)})


@require_http_methods(["GET", "POST"])
def second_factor_setup(request: HttpRequest) -> HttpResponseBase:
    """Enrol an authenticator app: scan the code (or type the key), then confirm with a code from the app. Open to a
    session that has not given a second factor only while the account has none (the first enrolment); replacing a
    device needs a verified session."""
    if (refused := _signed_in(request)) is not None:
        return refused
    user = request.user
    if account_selectors.has_second_factor(user) and account_selectors.second_factor_missing(user):
        return redirect(f"{reverse('login-second-factor')}?{urlencode({'next': request.get_full_path()})}")
    key = request.session.get(PENDING_KEY_SESSION) or account_services.totp_new_key()
    request.session[PENDING_KEY_SESSION] = key
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        confirmed = account_services.totp_confirm(user=user, key=key, code=form.cleaned_data["code"])
        if confirmed is not None:
            del request.session[PENDING_KEY_SESSION]
            django_otp.login(request, confirmed)
            messages.success(request, _("Your authenticator app is set up. Sign-ins now ask for its code."))
            return redirect(_safe_next(request))
        form.add_error("code", _("That code is not right. Check the app's clock and enter the current code."))
    device = account_services.totp_device_for_key(user, key)
    uri = device.config_url
    context = {
        "form": form,
        "next": _safe_next(request),
        "qr": qr_svg(uri),
        "uri": uri,
        "secret": _grouped(uri.split("secret=", 1)[1].split("&", 1)[0]),
        "required": settings.STAFF_REQUIRE_2FA,
    }
    response = render(request, "dashboard/account/second_factor_setup.html", context)
    response["Cache-Control"] = "private, no-store"
    return response


def _grouped(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


# --- The account page: tokens and the calendar feed -----------------------------------------------------------------


def _account_page(
    request: HttpRequest,
    *,
    new_token: str = "",
    new_feed_url: str = "",
    form: TokenForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    now = timezone.now()
    tokens = [
        {
            "token": token,
            "state": _("revoked")
            if token.revoked_at is not None
            else (_("expired") if token.is_expired(now) else _("active")),
            "active": token.revoked_at is None and not token.is_expired(now),
        }
        for token in account_selectors.tokens_of(user)
    ]
    context = {
        "tokens": tokens,
        "form": form or TokenForm(initial={"days": settings.API_TOKEN_DAYS}),
        "new_token": new_token,
        "feed": account_selectors.active_feed_of(user),
        "new_feed_url": new_feed_url,
        "has_second_factor": account_selectors.has_second_factor(user),
        "second_factor_required": settings.STAFF_REQUIRE_2FA,
    }
    response = render(request, "dashboard/account/account.html", context, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@staff_page
def account(request: HttpRequest) -> HttpResponse:
    return _account_page(request)


@require_POST
@staff_page
def token_create(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _account_page(request, form=form, status=400)
    try:
        _token, secret = account_services.token_issue(
            user=request.user, days=form.cleaned_data["days"], by=request.user
        )
    except ServiceError as exc:
        form.add_error("days", exc.message)
        return _account_page(request, form=form, status=400)
    return _account_page(request, new_token=secret)


@require_POST
@staff_page
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = account_selectors.token_of(request.user, token_id)
    if token is None:
        raise Http404("No such token.")
    account_services.token_revoke(token=token, by=request.user)
    messages.success(request, _("Token %(prefix)s… is revoked.") % {"prefix": token.prefix})
    return redirect("dashboard-account")


@require_POST
@staff_page
def feed_create(request: HttpRequest) -> HttpResponse:
    _feed, secret = account_services.feed_create(user=request.user)
    return _account_page(request, new_feed_url=f"{settings.SITE_URL}{reverse('calendar-feed', args=[secret])}")


@require_POST
@staff_page
def feed_revoke(request: HttpRequest) -> HttpResponse:
    if account_services.feed_revoke(user=request.user) is not None:
        messages.success(request, _("Your calendar feed address no longer works."))
    return redirect("dashboard-account")


@require_GET
def calendar_feed(request: HttpRequest, secret: str) -> HttpResponse:
    """The owner's own sessions, as their signed-in calendar (``/api/v1/calendar/me.ics``) lists them, for calendar
    apps that cannot sign in. An unknown or revoked secret is a 404."""
    user = account_selectors.feed_owner(secret)
    if user is None:
        raise Http404("No such calendar feed.")
    body = ical.calendar_seen_by(
        user, scheduling_selectors.staff_calendar_visits(user), name=f"{user.get_username()} sessions"
    )
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="sessions.ics"'
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


# --- Lockout ------------------------------------------------------------------------------------------------------


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """The page a sign-in gets while its account is locked (settings.AXES_LOCKOUT_CALLABLE): when to try again, in
    minutes, rather than an error."""
    now = timezone.now()
    username = str((credentials or {}).get("username") or request.POST.get("username", ""))[:150]
    until = account_selectors.lockout_ends(username) or now + dt.timedelta(minutes=int(settings.LOGIN_LOCKOUT_MINUTES))
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    return render(request, "dashboard/account/locked_out.html", {"minutes": minutes, "until": until}, status=429)
