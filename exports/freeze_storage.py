"""Where freeze zips are kept, and their checksums."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings


def freeze_dir() -> Path:
    """The directory of the freeze zips (FREEZE_DIR, else VAR_DIR/freezes), created if missing."""
    path = Path(getattr(settings, "FREEZE_DIR", None) or Path(settings.VAR_DIR) / "freezes")
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
