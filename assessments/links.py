"""Participant link tokens and the wrong-token rate limit.

A token is 32 bytes from ``secrets`` (256 bits, URL-safe base64: 43 characters). Only its SHA-256 is stored, so the
database never holds a working link. Hashing without a salt is enough here: the input has 256 bits of entropy, so there
is nothing to guess and no dictionary to precompute.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

TOKEN_BYTES = 32
SESSION_KEY = "assessments_link_id"


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hashes_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)


def link_path(token: str) -> str:
    # Keep this shape: trialsite.logging redacts "/l/<token>" from every log line.
    return f"/l/{token}/"


def link_url(token: str) -> str:
    return f"{settings.SITE_URL}{link_path(token)}"


# --- wrong-token limit --------------------------------------------------------------------------------------------
#
# Counted per client address in the shared cache (Redis in every deployed environment), so all web processes see one
# counter. ``cache.add`` creates the key with its expiry only if absent and ``cache.incr`` is Redis INCR: both atomic,
# so concurrent guesses cannot slip past the limit by racing a read-modify-write.


def failure_limit() -> int:
    return int(getattr(settings, "ASSESSMENT_LINK_FAILURE_LIMIT", 20))


def failure_window_seconds() -> int:
    return int(getattr(settings, "ASSESSMENT_LINK_FAILURE_WINDOW_SECONDS", 15 * 60))


def client_address(request: HttpRequest) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is set by the client and would let a guesser pick a fresh address per request.
    # Behind a proxy, the proxy must set REMOTE_ADDR (e.g. gunicorn --forwarded-allow-ips).
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _key(address: str) -> str:
    return f"assessments:link-failures:{address}"


def is_limited(address: str) -> bool:
    return (cache.get(_key(address)) or 0) >= failure_limit()


def record_failure(address: str) -> int:
    key = _key(address)
    cache.add(key, 0, timeout=failure_window_seconds())
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=failure_window_seconds())
        return 1
