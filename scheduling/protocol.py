"""Protocol definitions: parse and validate the JSON format described in docs/protocols.md.

A protocol is data, not code, so a site can load its own. Everything here is pure (no database, no Django) so that the
same checks run in tests, in the ``load_protocol`` management command and in the start-up system checks. The instrument
codes a protocol may name come from the catalogues registered in ``scheduling.hooks`` (the assessments library).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from scheduling.hooks import known_instrument_codes
from scheduling.ordering import OrderRule, anchor_bounds, order_errors

__all__ = [
    "DAY0_ANCHORS",
    "VISIT_KINDS",
    "VisitKind",
    "Arm",
    "BlindEnd",
    "BlindedSchedule",
    "ComparisonVisits",
    "DosingDeclaration",
    "VITAL_COMPARISONS",
    "VITAL_MEASURES",
    "VitalThreshold",
    "VitalTimepoint",
    "InstrumentDue",
    "Phase",
    "PrimaryComparison",
    "ProhibitedMedication",
    "Protocol",
    "ProtocolError",
    "Source",
    "Timepoint",
    "VisitDef",
    "blinded_schedule",
    "check_shipped_protocols",
    "dosing_number",
    "load_protocol_file",
    "load_shipped_protocols",
    "parse_protocol",
    "primary_comparison",
    "protocol_schema",
    "same_timing",
    "shipped_protocol_paths",
]

SCHEMA_PATH = Path(__file__).with_name("protocol_schema.json")
SHIPPED_DIR = Path(__file__).with_name("protocols")


class VisitKind(StrEnum):
    """What a visit is for. The values are stored on visits and appear in exports: they are a contract."""

    SCREENING = "screening"
    BASELINE = "baseline"
    PREPARATION = "preparation"
    DOSING = "dosing"
    INTEGRATION = "integration"
    ASSESSMENT = "assessment"
    FOLLOW_UP = "follow_up"


VISIT_KINDS: tuple[str, ...] = tuple(kind.value for kind in VisitKind)
# The therapy sessions: the visits therapists work on, and so the only ones a therapist books (docs/security.md).
THERAPY_SESSIONS: frozenset[str] = frozenset({VisitKind.PREPARATION, VisitKind.DOSING, VisitKind.INTEGRATION})
DAY0_ANCHORS: tuple[str, ...] = ("enrollment", "randomization")
VISIT_ANCHOR_PREFIX = "visit:"
_VISIT_ANCHOR_RE = re.compile(r"^visit:([A-Z][A-Z0-9_]*)$")


class ProtocolError(ValueError):
    """A protocol definition is invalid. ``errors`` holds every problem found, each prefixed by its JSON path."""

    def __init__(self, errors: list[str], source: str | None = None) -> None:
        self.errors = list(errors)
        self.source = source
        head = f"invalid protocol {source}" if source else "invalid protocol"
        super().__init__(head + ":\n" + "\n".join(f"  {e}" for e in self.errors))


@dataclass(frozen=True)
class InstrumentDue:
    code: str
    respondent: str  # "self" or "clinician"


@dataclass(frozen=True)
class VisitDef:
    code: str
    name: str
    kind: VisitKind
    anchor: str  # "enrollment", "randomization" or "visit:<CODE>"
    offset_days: int
    window_before_days: int
    window_after_days: int
    duration_minutes: int
    staff_required: int
    overnight: bool
    instruments: tuple[InstrumentDue, ...]
    optional: bool
    # Visits this one must never open before (checked statically, scheduling/ordering.py).
    follows: tuple[str, ...] = ()
    source: str | None = None  # id of an entry of the protocol's ``sources``

    @property
    def anchor_visit(self) -> str | None:
        """The code of the visit this one is anchored on, or None when anchored on enrollment/randomization."""
        if self.anchor.startswith(VISIT_ANCHOR_PREFIX):
            return self.anchor[len(VISIT_ANCHOR_PREFIX) :]
        return None

    @property
    def is_dosing(self) -> bool:
        return self.kind == VisitKind.DOSING


@dataclass(frozen=True)
class Arm:
    code: str
    label: str
    visits: tuple[VisitDef, ...]  # the protocol's common visits first, then the arm's own, in file order

    def visit(self, code: str) -> VisitDef:
        for v in self.visits:
            if v.code == code:
                return v
        raise KeyError(f"arm {self.code!r} has no visit {code!r}")

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(v.code for v in self.visits)

    def dosing_numbers(self) -> dict[str, int]:
        """Dosing visits numbered 1, 2, 3 in the order they are listed."""
        return {v.code: n for n, v in enumerate((v for v in self.visits if v.is_dosing), start=1)}


@dataclass(frozen=True)
class Source:
    """A published source a part of the protocol rests on (``supports`` says which part)."""

    id: str
    citation: str
    supports: str
    url: str | None = None


@dataclass(frozen=True)
class Phase:
    """A period declared as data, such as a medication taper (washout): it starts when ``from_visit`` happens, ends
    with ``to_visit`` (whose window is the phase's allowed length) and lies wholly before ``before_visit``."""

    code: str
    name: str
    kind: str  # "washout"
    from_visit: str
    to_visit: str
    before_visit: str
    applies_to: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class ProhibitedMedication:
    """A medication class (a code of the safety app's class list) a participant may not take into a dosing session:
    while it is taken, and for ``washout_days`` after it stops, no dosing session is booked."""

    medication_class: str
    washout_days: int
    illustrative: bool = False
    source: str | None = None


@dataclass(frozen=True)
class ComparisonVisits:
    """The visit codes of one arm's primary comparison: change is measured from ``baseline`` to ``endpoint``."""

    baseline: str
    endpoint: str


@dataclass(frozen=True)
class PrimaryComparison:
    """The protocol's primary comparison. ``matched_study_day``: every arm's endpoint is due on the same study day
    counted from randomization (same offset and window), so the arms are compared at the same time."""

    label: str
    matched_study_day: bool
    arms: Mapping[str, ComparisonVisits] = field(hash=False)
    source: str | None = None
    declared: bool = True  # False when derived for a protocol that predates the declaration


# What a dosing session's vital-signs thresholds may compare: the measures a VitalSign row records, and how.
VITAL_MEASURES: tuple[str, ...] = ("systolic_bp", "diastolic_bp", "heart_rate", "temperature_c")
VITAL_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class VitalTimepoint:
    """A moment of a dosing session at which vital signs are taken, in minutes from the initial dose (negative:
    before it, e.g. the pre-dose measurement)."""

    code: str
    label: str
    minutes: int


@dataclass(frozen=True)
class VitalThreshold:
    """A vital-sign value that raises a safety alert: ``measure comparison value`` (e.g. systolic_bp > 160). The
    comparison is the protocol's own, so a value exactly AT the threshold alerts under >= and not under >."""

    code: str
    measure: str
    comparison: str
    value: float
    severity: str = "high"

    def crossed_by(self, measured: float | None) -> bool:
        return measured is not None and VITAL_COMPARISONS[self.comparison](float(measured), float(self.value))

    def describe(self) -> str:
        return f"{self.measure} {self.comparison} {self.value:g}"


@dataclass(frozen=True)
class DosingDeclaration:
    """What a protocol declares about its dosing sessions: when vital signs are taken and which values alert."""

    timepoints: tuple[VitalTimepoint, ...]
    thresholds: tuple[VitalThreshold, ...]
    illustrative: bool
    note: str | None = None
    source: str | None = None

    @property
    def timepoint_codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.timepoints)


@dataclass(frozen=True)
class Timepoint:
    """An assessment moment every arm has, under a neutral code and label (e.g. PRIMARY, "Primary endpoint"), with the
    visit of each arm that serves it (``visits``: arm code -> visit code). Blinded roles see a participant's schedule
    as these timepoints only, and blinded exports align on them, so that no visit code, name or date names the arm."""

    code: str
    label: str
    visits: Mapping[str, str] = field(hash=False)
    endpoint: bool = False

    def visit_for(self, arm: str) -> str | None:
        return self.visits.get(arm)


@dataclass(frozen=True)
class BlindEnd:
    """The blind ends for ``roles`` once a participant's ``after`` timepoint is done (e.g. the delayed arm of a
    waitlist design is treated openly after the primary endpoint)."""

    roles: frozenset[str]
    after: str


@dataclass(frozen=True)
class BlindedSchedule:
    """What blinded roles see of the schedule: the protocol's timepoints, and where the blind ends for a role.
    ``declared`` is False when derived for a protocol that does not declare it (see ``blinded_schedule``)."""

    timepoints: tuple[Timepoint, ...]
    blind_ends: tuple[BlindEnd, ...] = ()
    declared: bool = True

    def timepoint(self, code: str) -> Timepoint | None:
        return next((t for t in self.timepoints if t.code == code), None)

    def timepoint_of(self, arm: str, visit_code: str) -> Timepoint | None:
        """The timepoint an arm's visit serves, or None (the visit is not shown to blinded roles)."""
        return next((t for t in self.timepoints if t.visits.get(arm) == visit_code), None)

    def blind_ends_after(self, role: str) -> Timepoint | None:
        """The timepoint after which the blind ends for ``role``, or None (it never ends by protocol)."""
        for end in self.blind_ends:
            if role in end.roles:
                return self.timepoint(end.after)
        return None


@dataclass(frozen=True)
class Protocol:
    code: str
    version: int
    title: str
    illustrative: bool
    note: str | None
    study_code: str | None
    day0: str  # "randomization" or "enrollment"
    common_visits: tuple[VisitDef, ...]
    arms: Mapping[str, Arm] = field(hash=False)
    randomization_after: str | None = None
    sources: tuple[Source, ...] = ()
    phases: tuple[Phase, ...] = ()
    prohibited_medications: tuple[ProhibitedMedication, ...] = ()
    primary_comparison: PrimaryComparison | None = None
    dosing_session: DosingDeclaration | None = None
    declared_blinded_schedule: BlindedSchedule | None = None
    # The role of the second person who approves unblinding (the first is an investigator); None: not declared.
    unblinding_second_approver_role: str | None = None
    # The validated source document, kept so a loader can store exactly what was checked.
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def shared_visit_codes(self) -> frozenset[str]:
        """The visit codes every arm has. A visit of some arms only names the arm (and so does a whole plan's dates);
        one with no arm at all names none."""
        if not self.arms:
            return frozenset()
        return frozenset(set.intersection(*(set(arm.codes) for arm in self.arms.values())))

    def arm(self, code: str) -> Arm:
        try:
            return self.arms[code]
        except KeyError:
            raise KeyError(f"protocol {self.code!r} has no arm {code!r}") from None


def dosing_number(arm: Arm, code: str) -> int | None:
    """1-based number of a dosing visit within its arm (by listed order); None for any other visit."""
    return arm.dosing_numbers().get(code)


def primary_comparison(protocol: Protocol) -> PrimaryComparison | None:
    """The protocol's primary comparison: the declared one, else (for a protocol written before the declaration
    existed) one derived per arm from the first visit of kind "baseline" and the first of kind "assessment", marked
    ``declared=False``. None when some arm has no such pair."""
    if protocol.primary_comparison is not None:
        return protocol.primary_comparison
    arms: dict[str, ComparisonVisits] = {}
    for arm in protocol.arms.values():
        baseline = next((v.code for v in arm.visits if v.kind == VisitKind.BASELINE), None)
        endpoint = next((v.code for v in arm.visits if v.kind == VisitKind.ASSESSMENT), None)
        if baseline is None or endpoint is None:
            return None
        arms[arm.code] = ComparisonVisits(baseline=baseline, endpoint=endpoint)
    return PrimaryComparison(
        label="first baseline and first assessment visit (not declared by the protocol)",
        matched_study_day=False,
        arms=arms,
        declared=False,
    )


def same_timing(protocol: Protocol, timepoint: Timepoint) -> bool:
    """Whether every arm's visit of ``timepoint`` is due at the same time: the same anchor, offset and window. Only
    then may a blinded role see the timepoint's target date and study day (otherwise the date names the arm)."""

    def timing(arm: Arm, code: str, depth: int = 0) -> tuple[Any, ...]:
        # The whole anchor chain counts: the same offset from a visit that is itself due at another time differs.
        v = arm.visit(code)
        anchor = v.anchor_visit
        base: Any = timing(arm, anchor, depth + 1) if anchor and depth < 50 else v.anchor
        return (base, v.offset_days, v.window_before_days, v.window_after_days)

    timings = set()
    for arm_code, visit_code in timepoint.visits.items():
        arm = protocol.arms.get(arm_code)
        if arm is None or visit_code not in arm.codes:
            return False
        timings.add(timing(arm, visit_code))
    return len(timings) == 1


def blinded_schedule(protocol: Protocol) -> BlindedSchedule:
    """The protocol's declared blinded schedule, else one derived from what it declares: the common visits (named
    as in the protocol), then the primary comparison's baseline and endpoint as BASELINE and PRIMARY. No blind end."""
    if protocol.declared_blinded_schedule is not None:
        return protocol.declared_blinded_schedule
    timepoints: list[Timepoint] = [
        Timepoint(code=v.code, label=v.name, visits={arm: v.code for arm in protocol.arms})
        for v in protocol.common_visits
    ]
    comparison = primary_comparison(protocol)
    if comparison is not None:
        for key, code, label, endpoint in (
            ("baseline", "BASELINE", "Baseline", False),
            ("endpoint", "PRIMARY", "Primary endpoint", True),
        ):
            visits = {arm: getattr(c, key) for arm, c in comparison.arms.items()}
            if any(t.visits == visits for t in timepoints):
                continue
            taken = {t.code for t in timepoints}
            timepoints.append(
                Timepoint(
                    code=code if code not in taken else f"{code}_TP", label=label, visits=visits, endpoint=endpoint
                )
            )
    return BlindedSchedule(timepoints=tuple(timepoints), declared=False)


@cache
def protocol_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def _known(known_instruments: Iterable[str] | None) -> frozenset[str]:
    """The codes given, or else the registered instrument catalogues (scheduling.hooks)."""
    return known_instrument_codes() if known_instruments is None else frozenset(known_instruments)


def _json_path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out or "(root)"


def _schema_errors(data: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(protocol_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [f"{_json_path(e.absolute_path)}: {e.message}" for e in errors]


def _visit_dicts(items: Any, base: str) -> list[tuple[str, dict[str, Any]]]:
    """(path, visit) pairs for the entries that look like visits; the schema check already reported the rest."""
    if not isinstance(items, list):
        return []
    return [(f"{base}[{i}]", v) for i, v in enumerate(items) if isinstance(v, dict) and isinstance(v.get("code"), str)]


def _check_visit_list(
    visits: list[tuple[str, dict[str, Any]]],
    inherited: dict[str, str],
    day0: Any,
    known_instruments: frozenset[str],
    source_ids: frozenset[str],
) -> list[str]:
    """Semantic checks for one list of visits that may also anchor on (and follow) ``inherited`` (code -> path)
    visits."""
    errors: list[str] = []
    seen: dict[str, str] = dict(inherited)
    local: dict[str, tuple[str, str | None]] = {}  # code -> (path, anchored visit code)
    for path, v in visits:
        code = v["code"]
        if code in seen:
            errors.append(f"{path}.code: duplicate visit code {code!r} (also at {seen[code]})")
        else:
            seen[code] = path
        anchor = v.get("anchor")
        # A malformed anchor was reported by the schema check; reporting it again as "unknown visit" would be noise.
        match = _VISIT_ANCHOR_RE.match(anchor) if isinstance(anchor, str) else None
        target = match.group(1) if match else None
        if code not in local:
            local[code] = (path, target)
        if anchor == "randomization" and day0 == "enrollment":
            errors.append(f"{path}.anchor: day0 is 'enrollment', so there is no randomization to anchor on")
        instruments = v.get("instruments")
        seen_instruments: set[str] = set()
        for j, ins in enumerate(instruments if isinstance(instruments, list) else []):
            icode = ins.get("code") if isinstance(ins, dict) else None
            if not isinstance(icode, str):
                continue
            if icode not in known_instruments:
                errors.append(f"{path}.instruments[{j}].code: unknown instrument {icode!r}")
            if icode in seen_instruments:
                errors.append(f"{path}.instruments[{j}].code: instrument {icode!r} listed twice")
            seen_instruments.add(icode)
        source = v.get("source")
        if isinstance(source, str) and source not in source_ids:
            errors.append(f"{path}.source: unknown source {source!r} (declare it in 'sources')")

    # Duplicates were reported above; the checks below look at the first visit listed under each code.
    all_codes = set(seen)
    for path, target in local.values():
        if target is not None and target not in all_codes:
            errors.append(f"{path}.anchor: unknown visit {target!r}")
    for path, v in visits:
        follows = v.get("follows")
        for j, code in enumerate(follows if isinstance(follows, list) else []):
            if not isinstance(code, str):
                continue
            if code == v["code"]:
                errors.append(f"{path}.follows[{j}]: a visit cannot follow itself")
            elif code not in all_codes:
                errors.append(f"{path}.follows[{j}]: unknown visit {code!r}")

    # Each visit has at most one anchor, so following anchors from any visit either leaves this list or loops. A loop is
    # reported once, at its first listed member, and named in the order the anchors are followed.
    reported: set[str] = set()
    for start, (path, _) in local.items():
        if start in reported:
            continue
        chain = [start]
        current = local[start][1]
        while current is not None and current in local and current not in chain:
            chain.append(current)
            current = local[current][1]
        if current == start:
            reported.update(chain)
            errors.append(f"{path}.anchor: cycle {' -> '.join([*chain, start])}")
    return errors


def _source_ids(data: dict[str, Any]) -> tuple[frozenset[str], list[str]]:
    """The declared source ids, and an error per id declared twice."""
    ids: dict[str, int] = {}
    errors: list[str] = []
    sources = data.get("sources")
    for i, src in enumerate(sources if isinstance(sources, list) else []):
        sid = src.get("id") if isinstance(src, dict) else None
        if not isinstance(sid, str):
            continue
        if sid in ids:
            errors.append(f"sources[{i}].id: duplicate source id {sid!r} (also at sources[{ids[sid]}])")
        ids.setdefault(sid, i)
    return frozenset(ids), errors


def _semantic_errors(data: Any, known_instruments: frozenset[str]) -> list[str]:
    if not isinstance(data, dict):
        return []
    source_ids, errors = _source_ids(data)
    day0 = data.get("day0")
    common = _visit_dicts(data.get("common_visits"), "common_visits")
    # Common visits are shared by every arm, so they may only anchor on each other (an arm's visit is not always there).
    errors += _check_visit_list(common, {}, day0, known_instruments, source_ids)
    common_codes: dict[str, str] = {}
    for path, v in common:
        common_codes.setdefault(v["code"], path)
    arms = data.get("arms")
    arm_codes: dict[str, set[str]] = {}
    if isinstance(arms, dict):
        if day0 == "enrollment" and len(arms) > 1:
            errors.append("day0: a protocol with several arms randomizes, so day0 must be 'randomization'")
        for arm_code, arm in arms.items():
            if not isinstance(arm, dict):
                continue
            own = _visit_dicts(arm.get("visits"), f"arms.{arm_code}.visits")
            errors += _check_visit_list(own, common_codes, day0, known_instruments, source_ids)
            if not own and not common and isinstance(arm.get("visits"), list):
                errors.append(f"arms.{arm_code}.visits: the arm has no visits")
            arm_codes[arm_code] = set(common_codes) | {v["code"] for _, v in own}
    errors += _randomization_after_errors(data, common_codes)
    errors += _phase_errors(data, common, source_ids)
    errors += _prohibited_medication_errors(data, source_ids)
    errors += _comparison_errors(data, arm_codes, source_ids)
    errors += _dosing_session_errors(data, arm_codes, source_ids)
    errors += _blinded_schedule_errors(data, arm_codes)
    return errors


def _blinded_schedule_errors(data: dict[str, Any], arm_codes: Mapping[str, set[str]]) -> list[str]:
    """Every timepoint names a visit the arm has, for every arm; codes are unique; one endpoint at most; a blind end
    names a declared timepoint."""
    declared = data.get("blinded_schedule")
    if not isinstance(declared, dict):
        return []
    errors: list[str] = []
    seen: set[str] = set()
    endpoints = 0
    for i, tp in enumerate(declared.get("timepoints", [])):
        if not isinstance(tp, dict):
            continue
        path = f"blinded_schedule.timepoints[{i}]"
        code = str(tp.get("code"))
        if code in seen:
            errors.append(f"{path}.code: timepoint {code!r} is declared twice")
        seen.add(code)
        endpoints += bool(tp.get("endpoint"))
        raw_visits = tp.get("visits")
        visits: dict[str, Any] = raw_visits if isinstance(raw_visits, dict) else {}
        for arm_code in arm_codes:
            if arm_code not in visits:
                errors.append(f"{path}.visits: arm {arm_code!r} has no visit for this timepoint")
        for arm_code, visit_code in visits.items():
            if arm_code not in arm_codes:
                errors.append(f"{path}.visits.{arm_code}: unknown arm {arm_code!r}")
            elif visit_code not in arm_codes[arm_code]:
                errors.append(f"{path}.visits.{arm_code}: arm {arm_code!r} has no visit {visit_code!r}")
    if endpoints > 1:
        errors.append("blinded_schedule.timepoints: only one timepoint may be the endpoint")
    for i, end in enumerate(declared.get("blind_ends", [])):
        if isinstance(end, dict) and end.get("after") not in seen:
            errors.append(f"blinded_schedule.blind_ends[{i}].after: unknown timepoint {end.get('after')!r}")
    return errors


def _randomization_after_errors(data: dict[str, Any], common_codes: Mapping[str, str]) -> list[str]:
    code = data.get("randomization_after")
    if not isinstance(code, str):
        return []
    if data.get("day0") != "randomization":
        return ["randomization_after: day0 is not 'randomization'"]
    # Randomization happens before the arm is known, so only a visit every participant has can come before it.
    if code not in common_codes:
        return [f"randomization_after: {code!r} is not a common visit (only those exist before randomization)"]
    anchors = {v.get("code"): v.get("anchor") for v in data.get("common_visits", []) if isinstance(v, dict)}
    current: Any = code
    seen: set[str] = set()
    while isinstance(current, str) and current in anchors and current not in seen:
        seen.add(current)
        anchor = anchors[current]
        if anchor == "randomization":
            return [f"randomization_after: {code!r} hangs on randomization, so it cannot come before it"]
        current = anchor[len(VISIT_ANCHOR_PREFIX) :] if isinstance(anchor, str) else None
    return []


def _phase_errors(
    data: dict[str, Any], common: list[tuple[str, dict[str, Any]]], source_ids: frozenset[str]
) -> list[str]:
    phases = data.get("phases")
    if not isinstance(phases, list):
        return []
    anchors = {v["code"]: v.get("anchor") for _, v in common}
    errors: list[str] = []
    seen: set[str] = set()
    for i, phase in enumerate(phases):
        if not isinstance(phase, dict):
            continue
        path = f"phases[{i}]"
        if phase.get("code") in seen:
            errors.append(f"{path}.code: duplicate phase code {phase.get('code')!r}")
        seen.add(str(phase.get("code")))
        # A phase comes before randomization (a taper precedes baseline), so it is made of visits every arm has.
        for key in ("from_visit", "to_visit", "before_visit"):
            code = phase.get(key)
            if isinstance(code, str) and code not in anchors:
                errors.append(f"{path}.{key}: {code!r} is not a common visit")
        start, end = phase.get("from_visit"), phase.get("to_visit")
        if start in anchors and end in anchors:
            # The phase's length is to_visit's window counted from from_visit, so to_visit must hang on from_visit.
            chain, current = [], end
            while isinstance(current, str) and current in anchors and current not in chain and current != start:
                chain.append(current)
                anchor = anchors[current]
                current = anchor[len(VISIT_ANCHOR_PREFIX) :] if isinstance(anchor, str) else None
            if current != start:
                errors.append(f"{path}.to_visit: {end!r} is not anchored on {start!r}, so the phase has no window")
        source = phase.get("source")
        if isinstance(source, str) and source not in source_ids:
            errors.append(f"{path}.source: unknown source {source!r} (declare it in 'sources')")
    return errors


def _prohibited_medication_errors(data: dict[str, Any], source_ids: frozenset[str]) -> list[str]:
    """A class is declared once (two washouts for one class would leave the booking check to guess), and a cited
    source is declared. Whether the class is known is the safety app's start-up check: scheduling does not read it."""
    items = data.get("prohibited_medications")
    if not isinstance(items, list):
        return []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        cls = item.get("class")
        if isinstance(cls, str):
            if cls in seen:
                errors.append(
                    f"prohibited_medications[{i}].class: class {cls!r} is declared twice "
                    f"(also at prohibited_medications[{seen[cls]}])"
                )
            seen.setdefault(cls, i)
        source = item.get("source")
        if isinstance(source, str) and source not in source_ids:
            errors.append(f"prohibited_medications[{i}].source: unknown source {source!r} (declare it in 'sources')")
    return errors


def _comparison_errors(
    data: dict[str, Any], arm_codes: Mapping[str, set[str]], source_ids: frozenset[str]
) -> list[str]:
    comparison = data.get("primary_comparison")
    if not isinstance(comparison, dict):
        return []
    errors: list[str] = []
    declared = comparison.get("arms")
    declared = declared if isinstance(declared, dict) else {}
    for arm_code in arm_codes:
        if arm_code not in declared:
            errors.append(f"primary_comparison.arms: arm {arm_code!r} has no comparison visits")
    for arm_code, visits in declared.items():
        path = f"primary_comparison.arms.{arm_code}"
        if arm_code not in arm_codes:
            errors.append(f"{path}: unknown arm {arm_code!r}")
            continue
        for key in ("baseline", "endpoint"):
            code = visits.get(key) if isinstance(visits, dict) else None
            if isinstance(code, str) and code not in arm_codes[arm_code]:
                errors.append(f"{path}.{key}: arm {arm_code!r} has no visit {code!r}")
    source = comparison.get("source")
    if isinstance(source, str) and source not in source_ids:
        errors.append(f"primary_comparison.source: unknown source {source!r} (declare it in 'sources')")
    return errors


# Plausible bounds of a threshold's value per measure (the VitalSign table's own check constraints are these).
VITAL_RANGES: dict[str, tuple[float, float]] = {
    "systolic_bp": (40, 300),
    "diastolic_bp": (20, 200),
    "heart_rate": (20, 250),
    "temperature_c": (30.0, 45.0),
}


def _dosing_session_errors(
    data: dict[str, Any], arm_codes: Mapping[str, set[str]], source_ids: frozenset[str]
) -> list[str]:
    """Cross-checks of the dosing declarations the schema cannot make: unique codes, timepoints in time order,
    threshold values within the plausible range of their measure, a declared source, and a protocol with a dosing
    visit to apply them to."""
    dosing = data.get("dosing_session")
    if not isinstance(dosing, dict):
        return []
    errors: list[str] = []
    if data.get("illustrative") is True and dosing.get("illustrative") is False:
        errors.append("dosing_session.illustrative: the protocol is illustrative, so its dosing values are too")
    has_dosing = any(
        isinstance(v, dict) and v.get("kind") == VisitKind.DOSING
        for v in [
            *data.get("common_visits", []),
            *(
                visit
                for arm in (data.get("arms") or {}).values()
                if isinstance(arm, dict)
                for visit in arm.get("visits", [])
            ),
        ]
    )
    if arm_codes and not has_dosing:
        errors.append("dosing_session: the protocol has no visit of kind 'dosing' to apply it to")
    seen: set[str] = set()
    last: int | None = None
    for i, point in enumerate(dosing.get("vital_sign_timepoints") or []):
        if not isinstance(point, dict):
            continue
        path = f"dosing_session.vital_sign_timepoints[{i}]"
        code, minutes = point.get("code"), point.get("minutes")
        if code in seen:
            errors.append(f"{path}.code: duplicate timepoint code {code!r}")
        seen.add(str(code))
        if isinstance(minutes, int) and last is not None and minutes <= last:
            errors.append(f"{path}.minutes: {minutes} is not after the previous timepoint ({last}); list them in order")
        if isinstance(minutes, int):
            last = minutes
    seen = set()
    for i, rule in enumerate(dosing.get("vital_sign_thresholds") or []):
        if not isinstance(rule, dict):
            continue
        path = f"dosing_session.vital_sign_thresholds[{i}]"
        code, measure, value = rule.get("code"), rule.get("measure"), rule.get("value")
        if code in seen:
            errors.append(f"{path}.code: duplicate threshold code {code!r}")
        seen.add(str(code))
        bounds = VITAL_RANGES.get(str(measure))
        if bounds and isinstance(value, int | float) and not bounds[0] <= value <= bounds[1]:
            errors.append(
                f"{path}.value: {value} is outside the plausible range of {measure} ({bounds[0]}-{bounds[1]})"
            )
    source = dosing.get("source")
    if isinstance(source, str) and source not in source_ids:
        errors.append(f"dosing_session.source: unknown source {source!r} (declare it in 'sources')")
    return errors


def _dosing_from(data: Mapping[str, Any]) -> DosingDeclaration | None:
    d = data.get("dosing_session")
    if d is None:
        return None
    return DosingDeclaration(
        timepoints=tuple(
            VitalTimepoint(code=t["code"], label=t["label"], minutes=t["minutes"]) for t in d["vital_sign_timepoints"]
        ),
        thresholds=tuple(
            VitalThreshold(
                code=r["code"],
                measure=r["measure"],
                comparison=r["comparison"],
                value=float(r["value"]),
                severity=r.get("severity", "high"),
            )
            for r in d["vital_sign_thresholds"]
        ),
        illustrative=d["illustrative"],
        note=d.get("note"),
        source=d.get("source"),
    )


def _visit_paths(data: Mapping[str, Any], arm_code: str) -> dict[str, str]:
    """Visit code -> JSON path, for the visits of one arm (its common visits first)."""
    paths = {v["code"]: f"common_visits[{i}]" for i, v in enumerate(data.get("common_visits", []))}
    for i, v in enumerate(data["arms"][arm_code]["visits"]):
        paths.setdefault(v["code"], f"arms.{arm_code}.visits[{i}]")
    return paths


def _order_and_matching_errors(protocol: Protocol) -> list[str]:
    """The checks that need a whole, well-formed protocol: visit order (scheduling/ordering.py) and matched
    comparison days. Run only once every other check passed, so they never trip over a dangling reference."""
    errors: list[str] = []
    comparison = protocol.primary_comparison
    for arm in protocol.arms.values():
        paths = _visit_paths(protocol.raw, arm.code)
        rules = [
            OrderRule(later=v.code, earlier=code, path=f"{paths[v.code]}.follows[{j}]")
            for v in arm.visits
            for j, code in enumerate(v.follows)
        ]
        if comparison is not None and arm.code in comparison.arms:
            pair = comparison.arms[arm.code]
            rules.append(
                OrderRule(later=pair.endpoint, earlier=pair.baseline, path=f"primary_comparison.arms.{arm.code}")
            )
        for i, phase in enumerate(protocol.phases):
            rules.append(OrderRule(later=phase.before_visit, earlier=phase.to_visit, path=f"phases[{i}].before_visit"))
        bounds = anchor_bounds(arm.visits, randomization_after=protocol.randomization_after)
        # A common visit's rule holds or fails alike in every arm that cannot move it; report each message once.
        errors += [e for e in order_errors(bounds, rules) if e not in errors]
    if comparison is not None and comparison.matched_study_day:
        errors += _matching_errors(protocol, comparison)
    return errors


def _matching_errors(protocol: Protocol, comparison: PrimaryComparison) -> list[str]:
    errors: list[str] = []
    shapes: dict[tuple[str, int, int, int], str] = {}
    for arm_code, pair in comparison.arms.items():
        v = protocol.arm(arm_code).visit(pair.endpoint)
        path = f"primary_comparison.arms.{arm_code}.endpoint"
        if v.anchor != "randomization":
            errors.append(
                f"{path}: {v.code} hangs on {v.anchor!r}; a matched study day needs the endpoint anchored on "
                "'randomization'"
            )
            continue
        shapes.setdefault((v.anchor, v.offset_days, v.window_before_days, v.window_after_days), arm_code)
    if len(shapes) > 1:
        described = "; ".join(
            f"arm {arm}: day {offset} (-{before}/+{after})" for (_, offset, before, after), arm in shapes.items()
        )
        errors.append(
            f"primary_comparison.matched_study_day: the arms' endpoints are due on different study days ({described})"
        )
    return errors


def _blinded_schedule_from(data: Mapping[str, Any]) -> BlindedSchedule | None:
    declared = data.get("blinded_schedule")
    if not isinstance(declared, Mapping):
        return None
    return BlindedSchedule(
        timepoints=tuple(
            Timepoint(code=t["code"], label=t["label"], visits=dict(t["visits"]), endpoint=t.get("endpoint", False))
            for t in declared["timepoints"]
        ),
        blind_ends=tuple(
            BlindEnd(roles=frozenset(e["roles"]), after=e["after"]) for e in declared.get("blind_ends", [])
        ),
    )


def _visit_from(v: dict[str, Any]) -> VisitDef:
    return VisitDef(
        code=v["code"],
        name=v["name"],
        kind=VisitKind(v["kind"]),
        anchor=v["anchor"],
        offset_days=v["offset_days"],
        window_before_days=v["window_before_days"],
        window_after_days=v["window_after_days"],
        duration_minutes=v["duration_minutes"],
        staff_required=v["staff_required"],
        overnight=v["overnight"],
        instruments=tuple(InstrumentDue(i["code"], i["respondent"]) for i in v["instruments"]),
        optional=v["optional"],
        follows=tuple(v.get("follows", [])),
        source=v.get("source"),
    )


def _comparison_from(data: Mapping[str, Any]) -> PrimaryComparison | None:
    c = data.get("primary_comparison")
    if c is None:
        return None
    return PrimaryComparison(
        label=c["label"],
        matched_study_day=c["matched_study_day"],
        arms={a: ComparisonVisits(baseline=p["baseline"], endpoint=p["endpoint"]) for a, p in c["arms"].items()},
        source=c.get("source"),
    )


def parse_protocol(
    data: Mapping[str, Any],
    *,
    known_instruments: Iterable[str] | None = None,
    source: str | None = None,
) -> Protocol:
    """Validate ``data`` and build a Protocol, or raise ProtocolError listing every problem (never a partial result).

    Instrument codes are checked against ``known_instruments`` when given, else against the registered catalogues."""
    known = _known(known_instruments)
    data = json.loads(json.dumps(data))  # a private deep copy: the caller's dict may change after we validated it
    errors = _schema_errors(data) + _semantic_errors(data, known)
    if errors:
        raise ProtocolError(errors, source)
    common = tuple(_visit_from(v) for v in data.get("common_visits", []))
    arms = {
        code: Arm(code=code, label=arm["label"], visits=common + tuple(_visit_from(v) for v in arm["visits"]))
        for code, arm in data["arms"].items()
    }
    protocol = Protocol(
        code=data["code"],
        version=data["version"],
        title=data["title"],
        illustrative=data["illustrative"],
        note=data.get("note"),
        study_code=data.get("study_code"),
        day0=data["day0"],
        common_visits=common,
        arms=arms,
        randomization_after=data.get("randomization_after"),
        sources=tuple(
            Source(id=s["id"], citation=s["citation"], supports=s["supports"], url=s.get("url"))
            for s in data.get("sources", [])
        ),
        phases=tuple(
            Phase(
                code=p["code"],
                name=p["name"],
                kind=p["kind"],
                from_visit=p["from_visit"],
                to_visit=p["to_visit"],
                before_visit=p["before_visit"],
                applies_to=p.get("applies_to"),
                source=p.get("source"),
            )
            for p in data.get("phases", [])
        ),
        prohibited_medications=tuple(
            ProhibitedMedication(
                medication_class=m["class"],
                washout_days=m["washout_days"],
                illustrative=m.get("illustrative", False),
                source=m.get("source"),
            )
            for m in data.get("prohibited_medications", [])
        ),
        primary_comparison=_comparison_from(data),
        dosing_session=_dosing_from(data),
        declared_blinded_schedule=_blinded_schedule_from(data),
        unblinding_second_approver_role=data.get("unblinding", {}).get("second_approver_role"),
        raw=data,
    )
    errors = _order_and_matching_errors(protocol)
    if errors:
        raise ProtocolError(errors, source)
    return protocol


def load_protocol_file(path: str | Path, *, known_instruments: Iterable[str] | None = None) -> Protocol:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProtocolError([f"(file): cannot read: {exc.strerror or exc}"], str(path)) from exc
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            [f"(file): invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"], str(path)
        ) from exc
    return parse_protocol(data, known_instruments=known_instruments, source=str(path))


def shipped_protocol_paths() -> list[Path]:
    return sorted(SHIPPED_DIR.glob("*.json"))


def load_shipped_protocols(*, known_instruments: Iterable[str] | None = None) -> dict[str, Protocol]:
    protocols: dict[str, Protocol] = {}
    for path in shipped_protocol_paths():
        protocol = load_protocol_file(path, known_instruments=known_instruments)
        protocols[protocol.code] = protocol
    return protocols


def check_shipped_protocols(*, known_instruments: Iterable[str] | None = None) -> list[str]:
    """Every problem with the shipped files as ``"<file>: <path>: <problem>"`` strings; empty when all is well."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for path in shipped_protocol_paths():
        try:
            protocol = load_protocol_file(path, known_instruments=known_instruments)
        except ProtocolError as exc:
            problems += [f"{path.name}: {e}" for e in exc.errors]
            continue
        # The file name is how people find a protocol; a mismatch would load one protocol under another's name.
        if protocol.code != path.stem:
            problems.append(f"{path.name}: code: {protocol.code!r} does not match the file name")
        if protocol.code in seen:
            problems.append(f"{path.name}: code: {protocol.code!r} is also defined in {seen[protocol.code]}")
        seen[protocol.code] = path.name
    if not seen and not problems:
        problems.append(f"{SHIPPED_DIR}: no shipped protocol files found")
    return problems
