"""Participant link tokens and the wrong-token rate limit.

A token is 32 bytes from ``secrets`` (256 bits, URL-safe base64: 43 characters). Only its SHA-256 is stored, so the
database never holds a working link. Hashing without a salt is enough here: the input has 256 bits of entropy, so there
is nothing to guess and no dictionary to precompute.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import threading
import time

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
# Only wrong tokens count, and only wrong tokens are refused: a request carrying a working token is always served, so
# a neighbour behind the same NAT or proxy who mistypes (or guesses) never locks a participant out. The limit is a brake
# on noisy clients, not what protects the links: a 256-bit token cannot be guessed.
#
# Counted per client address in the shared cache (Redis in every deployed environment), so all web processes see one
# counter. ``cache.add`` creates the key with its expiry only if absent and ``cache.incr`` is Redis INCR: both atomic,
# so concurrent guesses cannot slip past the limit by racing a read-modify-write. If the cache cannot be reached, the
# count is kept in this process instead (fail open to a local limit): participants' links keep working through a Redis
# outage.

logger = logging.getLogger(__name__)

try:  # the Redis cache backend's errors; the local-memory cache raises none
    from redis.exceptions import RedisError

    CACHE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)
except ImportError:  # pragma: no cover - redis is a dependency
    CACHE_ERRORS = (OSError,)


def failure_limit() -> int:
    return int(getattr(settings, "ASSESSMENT_LINK_FAILURE_LIMIT", 20))


def failure_window_seconds() -> int:
    return int(getattr(settings, "ASSESSMENT_LINK_FAILURE_WINDOW_SECONDS", 15 * 60))


def _valid_address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str:
    """The address the wrong-token limit counts against.

    REMOTE_ADDR, unless ``TRUSTED_PROXY_HEADER`` names the header that the deployment's own proxies set (e.g.
    ``HTTP_X_FORWARDED_FOR``). Each proxy appends the address it received the request from, so with
    ``TRUSTED_PROXY_COUNT`` proxies of our own in front, the client is the ``TRUSTED_PROXY_COUNT``-th entry from the
    right: everything left of it was written by the client and is never believed. A header that is missing, shorter
    than that, or not an address falls back to REMOTE_ADDR."""
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    header = getattr(settings, "TRUSTED_PROXY_HEADER", "") or ""
    if not header:
        return remote
    entries = [e for e in (request.META.get(header, "") or "").split(",") if e.strip()]
    count = max(1, int(getattr(settings, "TRUSTED_PROXY_COUNT", 1)))
    if len(entries) < count:
        return remote
    return _valid_address(entries[-count]) or remote


def _key(address: str) -> str:
    return f"assessments:link-failures:{address}"


class _LocalCounter:
    """Wrong-token counts of this process, used while the shared cache is unreachable: per address, a count and the
    end of its window. Bounded: when full, expired entries go first, then the oldest window."""

    MAX_ADDRESSES = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}

    def incr(self, address: str) -> int:
        now = time.monotonic()
        with self._lock:
            count, until = self._counts.get(address, (0, 0.0))
            if until <= now:
                count, until = 0, now + failure_window_seconds()
            if address not in self._counts and len(self._counts) >= self.MAX_ADDRESSES:
                self._prune(now)
            self._counts[address] = (count + 1, until)
            return count + 1

    def _prune(self, now: float) -> None:
        for key in [k for k, (_, until) in self._counts.items() if until <= now]:
            del self._counts[key]
        while len(self._counts) >= self.MAX_ADDRESSES:
            del self._counts[min(self._counts, key=lambda k: self._counts[k][1])]

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


local_counter = _LocalCounter()
_cache_down = threading.Event()  # set while the shared cache fails, so the warning is logged once per outage


def _shared_incr(address: str) -> int:
    key = _key(address)
    cache.add(key, 0, timeout=failure_window_seconds())
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=failure_window_seconds())
        return 1


def record_failure(address: str) -> int:
    """Count one wrong token from ``address``; the count within the window, this one included."""
    try:
        count = _shared_incr(address)
    except CACHE_ERRORS as exc:
        if not _cache_down.is_set():
            _cache_down.set()
            logger.warning(
                "link limit: the shared cache is unreachable (%s); counting wrong tokens in this process",
                type(exc).__name__,
            )
        return local_counter.incr(address)
    if _cache_down.is_set():
        _cache_down.clear()
        logger.warning("link limit: the shared cache answers again; counting wrong tokens there")
    return count


def wrong_token_limited(address: str) -> bool:
    """Count a wrong token from ``address``; True once the address has sent more than the limit within the window
    (answer 429 then, else 404). Never called for a working token."""
    return record_failure(address) > failure_limit()
