"""System checks: every AESI list file parses, the medication class list parses, and every shipped protocol names only
known medication classes (a broken list must stop start-up, not an adverse event or a medication entry)."""

from __future__ import annotations

import json
from typing import Any

from django.core import checks

from safety import aesi, medication_classes
from scheduling import selectors as scheduling_selectors


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


@checks.register()
def medication_classes_valid(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        known = medication_classes.medication_classes().codes
    except (medication_classes.MedicationClassListError, ValueError, OSError) as exc:
        return [checks.Error(f"medication class list: {exc}", id="safety.E003")]
    return [
        checks.Error(
            f"protocol {code}: prohibited_medications names the unknown medication class {cls!r}", id="safety.E004"
        )
        for code, classes in scheduling_selectors.shipped_prohibited_classes().items()
        for cls in classes
        if cls not in known
    ]
