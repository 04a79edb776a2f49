"""What every staff page's layout shows: the user's sites (read only when a page draws the navigation)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from participants import selectors as participant_selectors


def staff_navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav_sites": SimpleLazyObject(lambda: list(participant_selectors.sites_for(user)))}
