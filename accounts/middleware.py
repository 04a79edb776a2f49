"""Signed-in staff who still owe a second factor reach only the pages that let them give it (or enrol one), the
sign-out and the public parts of the site. The API answers for itself (accounts.authentication)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse

from accounts import selectors

# Paths open to a session without its second factor: the second-factor steps themselves, signing out, the public
# and participant-facing parts, and the API (whose own authentication refuses such a session).
OPEN_PREFIXES = ("/login/", "/logout/", "/static/", "/i18n/", "/l/", "/api/", "/calendar/feed/", "/healthz", "/readyz")


class SecondFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path.startswith(OPEN_PREFIXES) or not selectors.second_factor_missing(request.user):
            return self.get_response(request)
        target = reverse("login-second-factor")
        if request.headers.get("HX-Request") == "true":
            return HttpResponse(status=204, headers={"HX-Redirect": target})
        return redirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
