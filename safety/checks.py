"""System checks: every AESI list file parses (a broken list must stop start-up, not an adverse event entry)."""

from __future__ import annotations

import json
from typing import Any

from django.core import checks

from safety import aesi


@checks.register()
def aesi_lists_valid(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if not aesi.DEFAULT_FILE.is_file():
        errors.append(checks.Error(f"the shipped AESI list {aesi.DEFAULT_FILE} is missing", id="safety.E001"))
    for path in aesi.every_list_file():
        try:
            aesi.parse(json.loads(path.read_text(encoding="utf-8")), source=str(path))
        except (aesi.AesiListError, ValueError, OSError) as exc:
            errors.append(checks.Error(f"AESI list: {exc}", id="safety.E002"))
    return errors
