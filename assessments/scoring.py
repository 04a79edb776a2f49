"""The generic, table-driven scoring engine.

One engine scores every instrument from its definition (see :mod:`assessments.definitions`): no instrument has its own
scoring code. Arithmetic is exact (``fractions.Fraction``) and each value is converted to ``float`` once, at the end,
without rounding: an SCS subscale mean of 11/3 is ``11 / 3`` as a float.

Rules:

* A scale with any unanswered item has no value (``complete=False``) unless the instrument declares the
  ``prorate_mean`` missing-data rule and the missing share is within its limit; then the value is prorated from the
  mean of the answered items and marked ``prorated=True`` (still ``complete=False``).
* A flag is ``None`` when any input it reads is unknown: a scale without a value or a visible item without an answer.
  Items hidden by branching are not missing: they count as "not met" (for C-SSRS, as "no").
* Every score names its method and is stamped with the instrument version and :data:`SCORING_VERSION`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from assessments.definitions import Instrument, Item, Scale, validate_answers, visible_items

SCORING_VERSION = "1.0"


class InvalidAnswersError(ValueError):
    """The answers do not fit the instrument; ``errors`` maps item code to messages (see ``validate_answers``)."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{code}: {', '.join(msgs)}" for code, msgs in sorted(errors.items())))


@dataclass(frozen=True)
class ScaleScore:
    code: str
    value: float | None  # full precision, never rounded; None when the scale cannot be scored
    complete: bool  # every item of the scale was answered
    prorated: bool  # value imputed under the instrument's prorating rule
    method: str  # e.g. "sum", "mean", "neff_mean_of_subscale_means"
    n_items: int
    n_missing: int
    range_min: float
    range_max: float
    band: str | None = None
    recommended: bool = True  # False for scores the authors advise against (SCS-SF subscales)


@dataclass(frozen=True)
class ScoreResult:
    instrument_code: str
    instrument_version: str
    scoring_version: str
    missing_data_rule: str
    scales: dict[str, ScaleScore] = field(default_factory=dict)
    flags: dict[str, int | str | None] = field(default_factory=dict)
    bands: dict[str, str | None] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every scale complete and every flag determined."""
        return all(s.complete for s in self.scales.values()) and all(v is not None for v in self.flags.values())

    def value(self, code: str) -> float | int | str | None:
        """The value of a scale or flag by code."""
        if code in self.scales:
            return self.scales[code].value
        return self.flags[code]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score(instrument: Instrument, answers: Mapping[str, Any]) -> ScoreResult:
    """Score ``answers`` (item code -> integer option value; absent or ``None`` = unanswered).

    Raises :class:`InvalidAnswersError` if any answer is invalid (unknown item, wrong type, value not an option, or
    answer to an item hidden by branching). Missing answers are allowed and handled by the missing-data policy.
    """
    errors = validate_answers(instrument, answers, require_complete=False)
    if errors:
        raise InvalidAnswersError(errors)
    visible = {it.code for it in visible_items(instrument, answers)}
    answered = {code: v for code, v in answers.items() if v is not None and code in visible}
    engine = _Engine(instrument, answered, visible)

    scales = {s.code: engine.scale(s) for s in instrument.scales}
    flags: dict[str, int | str | None] = {}
    for flag in instrument.flags:
        flags[flag.code] = engine.rule(flag.rule, flags)
    bands: dict[str, str | None] = {}
    for band_set in instrument.bands:
        label = band_set.label_for(scales[band_set.scale].value)
        bands[band_set.scale] = label
        old = scales[band_set.scale]
        scales[band_set.scale] = ScaleScore(**{**asdict(old), "band": label})
    return ScoreResult(
        instrument_code=instrument.code,
        instrument_version=instrument.version,
        scoring_version=SCORING_VERSION,
        missing_data_rule=instrument.missing_data.rule,
        scales=scales,
        flags=flags,
        bands=bands,
    )


class _Engine:
    def __init__(self, instrument: Instrument, answered: Mapping[str, int], visible: set[str]):
        self.instrument = instrument
        self.items: dict[str, Item] = {it.code: it for it in instrument.items}
        self.scales: dict[str, Scale] = {s.code: s for s in instrument.scales}
        self.answered = answered
        self.visible = visible
        self.exact: dict[str, Fraction | None] = {}
        self.scored: dict[str, ScaleScore] = {}

    # ---- scales

    def scale(self, scale: Scale) -> ScaleScore:
        if scale.method in ("sum", "mean"):
            value, prorated, n_items, n_missing = self._item_scale(scale)
        else:
            value, prorated, n_items, n_missing = self._aggregate_scale(scale)
        self.exact[scale.code] = value
        result = ScaleScore(
            code=scale.code,
            value=None if value is None else float(value),
            complete=n_missing == 0,
            prorated=prorated,
            method=scale.reported_method,
            n_items=n_items,
            n_missing=n_missing,
            range_min=scale.range_min,
            range_max=scale.range_max,
            recommended=scale.recommended,
        )
        self.scored[scale.code] = result
        return result

    def _item_scale(self, scale: Scale) -> tuple[Fraction | None, bool, int, int]:
        values = []
        for code in scale.items:
            if code in self.answered:
                raw = self.answered[code]
                values.append(self.items[code].reverse(raw) if code in scale.reversed else raw)
        n_items = len(scale.items)
        n_missing = n_items - len(values)
        total = Fraction(sum(values))
        if n_missing == 0:
            return (total if scale.method == "sum" else total / n_items), False, n_items, 0
        policy = self.instrument.missing_data
        if (
            policy.rule == "prorate_mean"
            and values
            and policy.max_missing_fraction is not None
            and Fraction(n_missing, n_items) <= Fraction(str(policy.max_missing_fraction))
        ):
            mean = total / len(values)
            return (mean * n_items if scale.method == "sum" else mean), True, n_items, n_missing
        return None, False, n_items, n_missing

    def _aggregate_scale(self, scale: Scale) -> tuple[Fraction | None, bool, int, int]:
        parts: list[Fraction] = []
        prorated = False
        missing = False
        for code in scale.scales:
            value = self.exact[code]
            prorated |= self.scored[code].prorated
            if value is None:
                missing = True
                continue
            if code in scale.reversed_scales:
                sub = self.scales[code]
                value = Fraction(sub.range_min) + Fraction(sub.range_max) - value
            parts.append(value)
        underlying = self._underlying_items(scale)
        n_missing = sum(1 for code in underlying if code not in self.answered)
        if missing:
            return None, False, len(underlying), n_missing
        total = sum(parts, Fraction(0))
        value = total if scale.method == "sum_of_scales" else total / len(parts)
        return value, prorated, len(underlying), n_missing

    def _underlying_items(self, scale: Scale) -> list[str]:
        if scale.method in ("sum", "mean"):
            return list(scale.items)
        seen: dict[str, None] = {}
        for code in scale.scales:
            for item in self._underlying_items(self.scales[code]):
                seen.setdefault(item)
        return list(seen)

    # ---- flags (three-valued: True / False / None = unknown)

    def rule(self, rule: Mapping[str, Any], flags: Mapping[str, int | str | None]) -> int | str | None:
        if rule["type"] == "cssrs_risk":
            return self._cssrs_risk(rule)
        truth = self._truth(rule, flags)
        return None if truth is None else int(truth)

    def _truth(self, rule: Mapping[str, Any], flags: Mapping[str, int | str | None]) -> bool | None:
        kind = rule["type"]
        if kind == "cutoff":
            value = self.exact[rule["scale"]]
            return None if value is None else value >= Fraction(str(rule["gte"]))
        if kind == "cluster_criteria":
            return self._cluster_criteria(rule)
        if kind == "item":
            return self._item_condition(rule)
        if kind == "flag":
            flag = flags[rule["flag"]]
            return None if flag is None else bool(flag == rule["equals"])
        results = [self._truth(sub, flags) for sub in rule["rules"]]
        if any(r is None for r in results):
            return None
        return all(results) if kind == "all" else any(results)

    def _item_condition(self, cond: Mapping[str, Any]) -> bool | None:
        code = cond["item"]
        if code not in self.visible:
            return False  # hidden by branching: not asked, so not met
        if code not in self.answered:
            return None
        value = self.answered[code]
        return bool(value == cond["equals"]) if "equals" in cond else bool(value >= cond["gte"])

    def _cluster_criteria(self, rule: Mapping[str, Any]) -> bool | None:
        met = True
        for cluster, needed in rule["min_counts"].items():
            codes = self.scales[cluster].items
            if any(code in self.visible and code not in self.answered for code in codes):
                return None
            endorsed = sum(1 for code in codes if self.answered.get(code, -1) >= rule["threshold"])
            met &= endorsed >= needed
        for cond in rule.get("also", []):
            result = self._item_condition(cond)
            if result is None:
                return None
            met &= result
        return met

    def _cssrs_risk(self, rule: Mapping[str, Any]) -> str | None:
        for level in rule["levels"]:
            for code in level["any_yes"]:
                if code in self.visible and code not in self.answered:
                    return None
        for level in rule["levels"]:
            if any(self.answered.get(code) == 1 for code in level["any_yes"]):
                return str(level["level"])
        return str(rule["otherwise"])


def change_categories(instrument: Instrument, scale_code: str, baseline: float, current: float) -> list[str]:
    """Codes of the instrument's change thresholds met between ``baseline`` and ``current`` for one scale.

    For a "decrease" rule the improvement is ``baseline - current`` (PCL-5: a drop of >= 5 is "response", >= 10
    "clinically_meaningful"). Returns an empty list when the scale has no change rule or no threshold is met.
    """
    result: list[str] = []
    for rule in instrument.change:
        if rule.scale != scale_code:
            continue
        improvement = baseline - current if rule.direction == "decrease" else current - baseline
        result.extend(t.code for t in rule.thresholds if improvement >= t.gte)
    return result
