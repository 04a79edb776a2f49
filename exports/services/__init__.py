"""Export services: a dataset export (streamed, audited when the stream ends) and data freezes (snapshot, download)."""

from __future__ import annotations

from exports.services.exports import export_open
from exports.services.freezes import freeze_create, freeze_open

__all__ = ["export_open", "freeze_create", "freeze_open"]
