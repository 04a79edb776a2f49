"""Bearer secrets of staff accounts: API tokens and personal calendar-feed URLs.

A secret is 32 bytes from ``secrets`` (256 bits, URL-safe base64: 43 characters). Only its SHA-256 is stored, with
its first characters as a prefix the owner recognises it by, so the database never holds a working credential. As
with participant links (assessments.links), an unsalted hash is enough: there is nothing to guess in 256 random bits.
"""

from __future__ import annotations

import hashlib
import secrets

SECRET_BYTES = 32
PREFIX_LENGTH = 8


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def prefix(secret: str) -> str:
    return secret[:PREFIX_LENGTH]
