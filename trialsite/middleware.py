"""Session lifetime: the inactivity timeout slides (SESSION_COOKIE_AGE with save-every-request); this middleware
adds the absolute lifetime, after which a staff session ends however active it was. And paths that cannot name
anything (a NUL character) answer 404 before reaching a view. Responses that do not say how they may be cached are
kept out of every cache."""

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import Http404, HttpRequest, HttpResponseBase, JsonResponse

GetResponse = Callable[[HttpRequest], HttpResponseBase]

_STARTED = "_session_started_at"


class SessionLifetimeMiddleware:
    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        session = getattr(request, "session", None)
        if session is not None:
            now = int(time.time())
            started = session.get(_STARTED)
            if started is None:
                if session.get("_auth_user_id"):
                    session[_STARTED] = now
            elif now - int(started) > settings.SESSION_ABSOLUTE_SECONDS:
                logout(request)
        response = self.get_response(request)
        # A sign-in request puts the user into the session during the view: the lifetime starts there, not at the
        # next request (which may come much later).
        if session is not None and session.get(_STARTED) is None and session.get("_auth_user_id"):
            session[_STARTED] = int(time.time())
        return response


class NulInPathMiddleware:
    """A path carrying a NUL character (``%00``) names nothing: answer 404 before any view looks it up. Path
    parameters (participant ids, study and site codes, instrument codes) go into queries as text, and PostgreSQL text
    cannot hold NUL, so without this such a path would fail in the database instead of answering "not found"."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if "\x00" in request.path_info:
            if request.path_info.startswith("/api/"):
                return JsonResponse({"detail": "Not found."}, status=404)
            raise Http404("no such page")
        return self.get_response(request)


class NoStoreMiddleware:
    """Nothing the application answers may be kept by a browser or a shared cache unless the view says so: staff
    pages, API bodies and participant pages carry health information and pseudonymous ids, and a shared computer's
    back button or a proxy's cache must not show them to the next person. A response that sets its own
    Cache-Control (the calendar feed, exports, health checks) keeps it; static files (served before this runs in
    production, and under STATIC_URL in development) are not touched."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if not response.has_header("Cache-Control") and not request.path_info.startswith(
            f"/{settings.STATIC_URL.strip('/')}/"
        ):
            response["Cache-Control"] = "private, no-store"
        return response
