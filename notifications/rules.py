"""Reminder rules per protocol, declared as data next to the protocol they serve.

Each protocol code has a file ``notifications/rules/<protocol code>.json`` (``default.json`` otherwise). The rules are
kept apart from the protocol definition itself because protocol versions are immutable, ethics-approved records that
scheduling stores verbatim: changing how many reminders a participant gets must not mint a new protocol version.

Pure: no database. Validation errors name the file and the JSON path, like the protocol checks.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from scheduling.protocol import VISIT_KINDS

RULES_DIR = Path(__file__).with_name("rules")
OFFSET_UNITS = ("days", "hours", "minutes")


class RulesError(ValueError):
    pass


@dataclass(frozen=True)
class Offset:
    code: str
    delta: dt.timedelta  # applied in local wall-clock time (see planner.shift)


@dataclass(frozen=True)
class QuietHours:
    start: dt.time
    end: dt.time

    def contains(self, t: dt.time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # spans midnight, e.g. 21:00-08:00


@dataclass(frozen=True)
class Rules:
    protocol: str
    quiet_hours: QuietHours
    visit_kinds: frozenset[str]
    visit_before: tuple[Offset, ...]
    questionnaire_after_open: tuple[Offset, ...]
    skip_dosing_days: bool
    escalation_overdue_days: int | None
    escalation_roles: tuple[str, ...]


def _time(value: Any, path: str) -> dt.time:
    try:
        return dt.time.fromisoformat(value)
    except (TypeError, ValueError):
        raise RulesError(f"{path}: expected a local time like '21:00', got {value!r}") from None


def _offsets(items: Any, path: str) -> tuple[Offset, ...]:
    if not isinstance(items, list):
        raise RulesError(f"{path}: expected a list of offsets")
    out: list[Offset] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("code"), str) or not item["code"]:
            raise RulesError(f"{path}[{i}]: an offset needs a 'code'")
        unknown = set(item) - {"code", *OFFSET_UNITS}
        if unknown:
            raise RulesError(f"{path}[{i}]: unknown keys {sorted(unknown)}; use {', '.join(OFFSET_UNITS)}")
        values = {u: item.get(u, 0) for u in OFFSET_UNITS}
        if any(not isinstance(v, int) or v < 0 for v in values.values()):
            raise RulesError(f"{path}[{i}]: offsets are non-negative integers")
        if item["code"] in seen:
            raise RulesError(f"{path}[{i}]: duplicate code {item['code']!r}")
        seen.add(item["code"])
        out.append(Offset(item["code"], dt.timedelta(**values)))
    return tuple(out)


def parse_rules(data: Any, source: str = "rules") -> Rules:
    try:
        if not isinstance(data, dict):
            raise RulesError("expected an object")
        quiet = data.get("quiet_hours", {"start": "21:00", "end": "08:00"})
        visits = data.get("visit_reminders", {})
        kinds = frozenset(visits.get("kinds", VISIT_KINDS))
        if kinds - set(VISIT_KINDS):
            raise RulesError(f"visit_reminders.kinds: unknown kinds {sorted(kinds - set(VISIT_KINDS))}")
        questionnaires = data.get("questionnaire_reminders", {})
        escalation = data.get("coordinator_escalation") or {}
        overdue = escalation.get("overdue_days")
        if overdue is not None and (not isinstance(overdue, int) or overdue < 0):
            raise RulesError("coordinator_escalation.overdue_days: a non-negative integer")
        return Rules(
            protocol=str(data.get("protocol", "")),
            quiet_hours=QuietHours(
                _time(quiet.get("start"), "quiet_hours.start"), _time(quiet.get("end"), "quiet_hours.end")
            ),
            visit_kinds=kinds,
            visit_before=_offsets(visits.get("before", []), "visit_reminders.before"),
            questionnaire_after_open=_offsets(
                questionnaires.get("after_open", []), "questionnaire_reminders.after_open"
            ),
            skip_dosing_days=bool(questionnaires.get("skip_dosing_days", True)),
            escalation_overdue_days=overdue,
            escalation_roles=tuple(escalation.get("roles", ["coordinator"])),
        )
    except RulesError as exc:
        raise RulesError(f"{source}: {exc}") from None


@cache
def rules_for(protocol_code: str) -> Rules:
    """The rules declared for ``protocol_code``; the default rules when it has no file of its own."""
    path = RULES_DIR / f"{protocol_code}.json"
    if not protocol_code or not path.exists():
        path = RULES_DIR / "default.json"
    return parse_rules(json.loads(path.read_text(encoding="utf-8")), source=path.name)


def check_rule_files() -> list[str]:
    """Every problem in the shipped rule files (run as a system check at start-up)."""
    problems = []
    for path in sorted(RULES_DIR.glob("*.json")):
        try:
            parse_rules(json.loads(path.read_text(encoding="utf-8")), source=path.name)
        except (RulesError, json.JSONDecodeError) as exc:
            problems.append(str(exc) if isinstance(exc, RulesError) else f"{path.name}: {exc}")
    return problems
