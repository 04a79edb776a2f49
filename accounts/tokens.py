"""Checking a presented API token (the API's authentication calls this on every request, so it imports nothing that
imports the API: trialsite.errors does)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from accounts import keys
from accounts.models import ApiToken

# How often the last-use time of a token is written: at most once a minute, not on every request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def token_authenticate(secret: str) -> ApiToken | None:
    """The token row for a presented token (revoked and expired rows included: the caller tells them apart), with
    its last use noted at most once a minute. None for an unknown token."""
    token = ApiToken.objects.select_related("user").filter(digest=keys.digest(secret)).first()
    if token is None or token.revoked_at is not None or token.is_expired():
        return token
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        # Bookkeeping, not a change of the account: not audited.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
