"""Session lifetime: the inactivity timeout slides (SESSION_COOKIE_AGE with save-every-request); this middleware
adds the absolute lifetime, after which a staff session ends however active it was."""

import time

from django.conf import settings
from django.contrib.auth import logout

_STARTED = "_session_started_at"


class SessionLifetimeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None:
            now = int(time.time())
            started = session.get(_STARTED)
            if started is None:
                if session.get("_auth_user_id"):
                    session[_STARTED] = now
            elif now - int(started) > settings.SESSION_ABSOLUTE_SECONDS:
                logout(request)
        return self.get_response(request)
