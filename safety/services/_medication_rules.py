"""Shared checks of the medication services: who may write, and what a medication's values may be."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

from django.utils import timezone

from participants.access import Actor, require_role
from participants.models import Participant
from safety import medication_classes
from safety.models import ConcomitantMedication
from safety.services._rules import RECORDERS

_LIMITS = {"name": 200, "dose_text": 100, "frequency": 100, "indication": 300}


def require_medication_recorder(by: Actor, participant: Participant) -> None:
    # The staff who record adverse events record medications too: they hear of them in clinic and in session.
    require_role(by, participant.site_id, RECORDERS, "record concomitant medications")


def site_today(participant: Participant) -> dt.date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(participant.site.time_zone)).date()


def check_values(participant: Participant, values: dict[str, Any]) -> dict[str, list[str]]:
    """Field errors of a full set of medication values (after a correction is applied, the whole row is checked)."""
    errors: dict[str, list[str]] = {}
    if not str(values.get("name") or "").strip():
        errors["name"] = ["required"]
    for name, limit in _LIMITS.items():
        if len(str(values.get(name) or "")) > limit:
            errors.setdefault(name, []).append(f"at most {limit} characters")
    if values.get("medication_class") not in medication_classes.medication_classes().codes:
        errors["medication_class"] = ["not a medication class of the class list"]
    amount, unit, text = values.get("dose_amount"), values.get("dose_unit"), values.get("dose_text")
    if amount is not None and (not isinstance(amount, Decimal | int) or amount <= 0):
        errors["dose_amount"] = ["a positive amount"]
    elif amount is not None and not unit:
        errors["dose_unit"] = ["a dose amount needs its unit"]
    elif amount is None and unit:
        errors["dose_amount"] = ["a unit needs its dose amount"]
    elif amount is None and not text:
        errors["dose_amount"] = ["give the dose as an amount with its unit, or as text"]
    if values.get("dose_unit") not in {"", *ConcomitantMedication.DoseUnit.values}:
        errors["dose_unit"] = ["not one of the allowed units"]
    if values.get("route") not in {"", *ConcomitantMedication.Route.values}:
        errors["route"] = ["not one of the allowed values"]
    start, stop = values.get("start_date"), values.get("stop_date")
    if not isinstance(start, dt.date):
        errors["start_date"] = ["required"]
    elif start > site_today(participant):
        errors["start_date"] = ["cannot be in the future"]
    # A stop date may lie ahead: a taper is planned to end on it.
    if isinstance(start, dt.date) and isinstance(stop, dt.date) and stop < start:
        errors["stop_date"] = ["cannot be before the start date"]
    return errors
