"""The audit key: from the environment (``AUDIT_KEY`` / ``AUDIT_KEY_FILE``), never from the database."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def audit_key() -> bytes:
    """The key that chains audit rows and signs checkpoints (settings refuse to start without one when DEBUG is off;
    with DEBUG on they derive a development key from SECRET_KEY)."""
    key = str(settings.AUDIT_KEY or "")
    if not key:
        raise ImproperlyConfigured("AUDIT_KEY is required (or set AUDIT_KEY_FILE)")
    return key.encode("utf-8")
