"""Instrument definitions: load, validate and query the versioned instrument files.

An instrument file (JSON) declares items, response options, branching, scales, flags, bands, the missing-data policy,
change thresholds and safety rules. ``parse_instrument`` checks it twice: structurally against
``instrument_schema.json`` (JSON Schema draft 2020-12) and semantically (cross-references, unique codes, declared
ranges). Every problem is reported with the JSON path where it was found, e.g.
``scales[2].items[3]: unknown item 'SCS_27'``.

Pure Python: no database and no Django import, so scoring can be tested and reused anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).with_name("instrument_schema.json")
INSTRUMENTS_DIR = Path(__file__).with_name("instruments")
# Earlier shipped versions, kept unchanged as ``CODE-VERSION.json`` so that a response stored under one of them is still
# corrected and rescored with the definition it was answered under (never silently with the newer one).
SUPERSEDED_DIR = INSTRUMENTS_DIR / "superseded"

AGGREGATE_METHODS = frozenset({"sum_of_scales", "mean_of_scale_means"})


class InstrumentError(ValueError):
    """An instrument definition is invalid. ``errors`` lists every problem, each prefixed with its JSON path."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors) if self.errors else "invalid instrument")


@dataclass(frozen=True)
class Option:
    value: int
    label: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ShowIf:
    """Branching: the item is shown only when ``item`` (an earlier, visible item) was answered ``equals``."""

    item: str
    equals: int


@dataclass(frozen=True)
class Item:
    code: str
    text: str
    options: tuple[Option, ...]
    required: bool = True
    texts: Mapping[str, str] = field(default_factory=dict)
    show_if: ShowIf | None = None
    note: str | None = None
    # Items that belong together on one screen (LSAS-SR: fear and avoidance of one situation); see assessments.paging.
    group: str | None = None

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(o.value for o in self.options)

    @property
    def min_value(self) -> int:
        return min(self.values)

    @property
    def max_value(self) -> int:
        return max(self.values)

    def reverse(self, value: int) -> int:
        """Reverse-keyed value: ``min + max - value`` of this item's options (e.g. 6 - v on a 1-5 scale)."""
        return self.min_value + self.max_value - value


@dataclass(frozen=True)
class Scale:
    code: str
    label: str
    method: str  # "sum" | "mean" | "sum_of_scales" | "mean_of_scale_means"
    range_min: float
    range_max: float
    items: tuple[str, ...] = ()
    reversed: frozenset[str] = frozenset()
    scales: tuple[str, ...] = ()
    reversed_scales: frozenset[str] = frozenset()
    method_name: str | None = None
    recommended: bool = True
    note: str | None = None

    @property
    def reported_method(self) -> str:
        """The name stamped on every score: ``method_name`` when declared (e.g. "neff_mean_of_subscale_means")."""
        return self.method_name or self.method


@dataclass(frozen=True)
class Flag:
    code: str
    label: str
    rule: Mapping[str, Any]
    note: str | None = None


@dataclass(frozen=True)
class Band:
    min: float
    max: float
    label: str


@dataclass(frozen=True)
class BandSet:
    """Bands of one scale. A value v is in the band with ``min <= v < max``; the last band also includes its max."""

    scale: str
    normative: bool
    bands: tuple[Band, ...]
    note: str | None = None

    def label_for(self, value: float | None) -> str | None:
        if value is None:
            return None
        for i, band in enumerate(self.bands):
            last = i == len(self.bands) - 1
            if band.min <= value < band.max or (last and value == band.max):
                return band.label
        return None


@dataclass(frozen=True)
class MissingDataPolicy:
    rule: str = "none"  # "none" | "prorate_mean"
    max_missing_fraction: float | None = None


@dataclass(frozen=True)
class ChangeThreshold:
    code: str
    gte: float
    label: str | None = None


@dataclass(frozen=True)
class ChangeRule:
    scale: str
    direction: str  # "decrease" | "increase" (the direction that counts as improvement)
    thresholds: tuple[ChangeThreshold, ...]


@dataclass(frozen=True)
class Instrument:
    code: str
    version: str
    title: str
    licence: str
    sources: tuple[Mapping[str, str], ...]
    respondent: str
    entry_roles: tuple[str, ...]
    recall_period: str
    languages: tuple[str, ...]
    item_text_status: str
    items: tuple[Item, ...]
    scales: tuple[Scale, ...]
    flags: tuple[Flag, ...]
    bands: tuple[BandSet, ...]
    missing_data: MissingDataPolicy
    change: tuple[ChangeRule, ...]
    safety_rules: tuple[Mapping[str, Any], ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def item_codes(self) -> tuple[str, ...]:
        return tuple(i.code for i in self.items)

    def item(self, code: str) -> Item:
        return self._items_by_code[code]

    def scale(self, code: str) -> Scale:
        return {s.code: s for s in self.scales}[code]

    def flag(self, code: str) -> Flag:
        return {f.code: f for f in self.flags}[code]

    def bands_for(self, scale_code: str) -> BandSet | None:
        return next((b for b in self.bands if b.scale == scale_code), None)

    @property
    def _items_by_code(self) -> dict[str, Item]:
        return {i.code: i for i in self.items}


# --------------------------------------------------------------------------------------------------------- parsing


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def _schema_errors(data: Any) -> list[str]:
    errors = sorted(_validator().iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [f"{_path(e.absolute_path)}: {e.message}" for e in errors]


def parse_instrument(data: Any) -> Instrument:
    """Validate ``data`` (a decoded instrument file) and build an :class:`Instrument`.

    Raises :class:`InstrumentError` listing every structural or semantic problem with its JSON path.
    """
    errors = _schema_errors(data)
    if errors:
        raise InstrumentError(errors)
    errors = []
    option_sets = data.get("option_sets", {})

    def options_of(spec: Any, where: str) -> tuple[Option, ...]:
        if isinstance(spec, str):
            if spec not in option_sets:
                errors.append(f"{where}: unknown option set '{spec}'")
                return ()
            spec = option_sets[spec]
        return tuple(Option(o["value"], o["label"], dict(o.get("labels", {}))) for o in spec)

    languages = tuple(data["languages"])
    if "en" not in languages:
        errors.append("languages: must include 'en' (the reference text)")

    for name, opts in option_sets.items():
        _check_options(opts, f"option_sets.{name}", languages, errors)

    items: list[Item] = []
    seen_items: dict[str, int] = {}
    groups_seen: dict[str, int] = {}
    for i, raw in enumerate(data["items"]):
        where = f"items[{i}]"
        code = raw["code"]
        if code in seen_items:
            errors.append(f"{where}.code: duplicate item code '{code}' (first at items[{seen_items[code]}])")
        if not isinstance(raw["options"], str):
            _check_options(raw["options"], f"{where}.options", languages, errors)
        options = options_of(raw["options"], f"{where}.options")
        for lang in raw.get("texts", {}):
            if lang not in languages:
                errors.append(f"{where}.texts.{lang}: language not declared in 'languages'")
        show_if = None
        if "show_if" in raw:
            cond = raw["show_if"]
            show_if = ShowIf(cond["item"], cond["equals"])
            if cond["item"] not in seen_items:
                known = cond["item"] in {it["code"] for it in data["items"]}
                why = "must refer to an earlier item" if known else f"unknown item '{cond['item']}'"
                errors.append(f"{where}.show_if.item: {why}")
            else:
                earlier = items[seen_items[cond["item"]]]
                if cond["equals"] not in earlier.values:
                    errors.append(f"{where}.show_if.equals: {cond['equals']} is not an option of '{cond['item']}'")
        group = raw.get("group")
        if group is not None and group in groups_seen and items[-1].group != group:
            errors.append(f"{where}.group: group '{group}' must be contiguous (first at items[{groups_seen[group]}])")
        if group is not None:
            groups_seen.setdefault(group, i)
        seen_items.setdefault(code, i)
        items.append(
            Item(
                code=code,
                text=raw["text"],
                options=options,
                required=raw.get("required", True),
                texts=dict(raw.get("texts", {})),
                show_if=show_if,
                note=raw.get("note"),
                group=group,
            )
        )
    item_by_code = {it.code: it for it in items}

    scales: list[Scale] = []
    scale_index: dict[str, int] = {}
    computed_ranges: dict[str, tuple[Fraction, Fraction]] = {}
    for s, raw in enumerate(data["scales"]):
        where = f"scales[{s}]"
        code = raw["code"]
        if code in scale_index:
            errors.append(f"{where}.code: duplicate scale code '{code}' (first at scales[{scale_index[code]}])")
        scale = Scale(
            code=code,
            label=raw["label"],
            method=raw["method"],
            range_min=raw["range"]["min"],
            range_max=raw["range"]["max"],
            items=tuple(raw.get("items", ())),
            reversed=frozenset(raw.get("reversed", ())),
            scales=tuple(raw.get("scales", ())),
            reversed_scales=frozenset(raw.get("reversed_scales", ())),
            method_name=raw.get("method_name"),
            recommended=raw.get("recommended", True),
            note=raw.get("note"),
        )
        ok = True
        ok &= _check_refs(raw.get("items", []), item_by_code, f"{where}.items", "item", errors)
        for j, rev in enumerate(raw.get("reversed", [])):
            if rev not in scale.items:
                errors.append(f"{where}.reversed[{j}]: '{rev}' is not one of this scale's items")
                ok = False
        for j, sub in enumerate(raw.get("scales", [])):
            if sub not in scale_index:
                known = sub in {sc["code"] for sc in data["scales"]}
                why = "must refer to a scale declared earlier" if known else f"unknown scale '{sub}'"
                errors.append(f"{where}.scales[{j}]: {why}")
                ok = False
        ok &= _check_dupes(raw.get("scales", []), f"{where}.scales", "scale", errors)
        for j, rev in enumerate(raw.get("reversed_scales", [])):
            if rev not in scale.scales:
                errors.append(f"{where}.reversed_scales[{j}]: '{rev}' is not one of this scale's scales")
                ok = False
        if ok and all(sub in computed_ranges for sub in scale.scales):
            lo, hi = _computed_range(scale, item_by_code, computed_ranges)
            computed_ranges[code] = (lo, hi)
            if (Fraction(scale.range_min), Fraction(scale.range_max)) != (lo, hi):
                errors.append(
                    f"{where}.range: declared {scale.range_min}..{scale.range_max} but the items and method give "
                    f"{_num(lo)}..{_num(hi)}"
                )
        scale_index.setdefault(code, s)
        scales.append(scale)

    flags: list[Flag] = []
    flag_index: dict[str, int] = {}
    for f, raw in enumerate(data["flags"]):
        where = f"flags[{f}]"
        code = raw["code"]
        if code in flag_index:
            errors.append(f"{where}.code: duplicate flag code '{code}' (first at flags[{flag_index[code]}])")
        if code in scale_index:
            errors.append(f"{where}.code: '{code}' is already a scale code")
        _check_rule(raw["rule"], f"{where}.rule", item_by_code, scale_index, scales, flag_index, errors)
        flag_index.setdefault(code, f)
        flags.append(Flag(code=code, label=raw["label"], rule=raw["rule"], note=raw.get("note")))

    band_sets: list[BandSet] = []
    banded: set[str] = set()
    for b, raw in enumerate(data["bands"]):
        where = f"bands[{b}]"
        scale_code = raw["scale"]
        if scale_code not in scale_index:
            errors.append(f"{where}.scale: unknown scale '{scale_code}'")
        elif scale_code in banded:
            errors.append(f"{where}.scale: scale '{scale_code}' already has bands")
        else:
            banded.add(scale_code)
            _check_bands(raw["bands"], scales[scale_index[scale_code]], where, errors)
        band_sets.append(
            BandSet(
                scale=scale_code,
                normative=raw["normative"],
                bands=tuple(Band(x["min"], x["max"], x["label"]) for x in raw["bands"]),
                note=raw.get("note"),
            )
        )

    change_rules: list[ChangeRule] = []
    for c, raw in enumerate(data.get("change", [])):
        if raw["scale"] not in scale_index:
            errors.append(f"change[{c}].scale: unknown scale '{raw['scale']}'")
        _check_dupes([t["code"] for t in raw["thresholds"]], f"change[{c}].thresholds", "threshold", errors)
        change_rules.append(
            ChangeRule(
                scale=raw["scale"],
                direction=raw["direction"],
                thresholds=tuple(ChangeThreshold(t["code"], t["gte"], t.get("label")) for t in raw["thresholds"]),
            )
        )

    safety_codes: dict[str, int] = {}
    for r, raw in enumerate(data["safety_rules"]):
        where = f"safety_rules[{r}]"
        if raw["code"] in safety_codes:
            errors.append(f"{where}.code: duplicate safety rule code '{raw['code']}'")
        safety_codes.setdefault(raw["code"], r)
        if raw["type"] == "flag_equals" and raw["flag"] not in flag_index:
            errors.append(f"{where}.flag: unknown flag '{raw['flag']}'")
        if raw["type"] == "rise_from_baseline" and raw["scale"] not in scale_index:
            errors.append(f"{where}.scale: unknown scale '{raw['scale']}'")

    roles = data["entry_roles"]
    if data["respondent"] == "clinician" and "participant" in roles:
        errors.append("entry_roles: a clinician-rated instrument cannot be entered by the participant")

    missing = data["missing_data"]
    if errors:
        raise InstrumentError(errors)
    return Instrument(
        code=data["code"],
        version=data["version"],
        title=data["title"],
        licence=data["licence"],
        sources=tuple(dict(s) for s in data["sources"]),
        respondent=data["respondent"],
        entry_roles=tuple(roles),
        recall_period=data["recall_period"],
        languages=languages,
        item_text_status=data["item_text"]["status"],
        items=tuple(items),
        scales=tuple(scales),
        flags=tuple(flags),
        bands=tuple(band_sets),
        missing_data=MissingDataPolicy(missing["rule"], missing.get("max_missing_fraction")),
        change=tuple(change_rules),
        safety_rules=tuple(dict(r) for r in data["safety_rules"]),
        raw=data,
    )


def _num(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else str(float(x))


def _check_options(opts: list[dict[str, Any]], where: str, languages: tuple[str, ...], errors: list[str]) -> None:
    seen: set[int] = set()
    for k, opt in enumerate(opts):
        if opt["value"] in seen:
            errors.append(f"{where}[{k}].value: duplicate option value {opt['value']}")
        seen.add(opt["value"])
        for lang in opt.get("labels", {}):
            if lang not in languages:
                errors.append(f"{where}[{k}].labels.{lang}: language not declared in 'languages'")


def _check_dupes(codes: list[str], where: str, what: str, errors: list[str]) -> bool:
    seen: set[str] = set()
    ok = True
    for j, code in enumerate(codes):
        if code in seen:
            errors.append(f"{where}[{j}]: duplicate {what} '{code}'")
            ok = False
        seen.add(code)
    return ok


def _check_refs(codes: list[str], known: Mapping[str, Any], where: str, what: str, errors: list[str]) -> bool:
    ok = True
    for j, code in enumerate(codes):
        if code not in known:
            errors.append(f"{where}[{j}]: unknown {what} '{code}'")
            ok = False
    return _check_dupes(codes, where, what, errors) and ok


def _computed_range(
    scale: Scale, items: Mapping[str, Item], sub_ranges: Mapping[str, tuple[Fraction, Fraction]]
) -> tuple[Fraction, Fraction]:
    """Smallest and largest value the scale can take, from the option ranges and the method."""
    if scale.method in ("sum", "mean"):
        los = [Fraction(items[c].min_value) for c in scale.items]
        his = [Fraction(items[c].max_value) for c in scale.items]
        lo, hi = sum(los, Fraction(0)), sum(his, Fraction(0))
        if scale.method == "mean":
            lo, hi = lo / len(scale.items), hi / len(scale.items)
        return lo, hi
    parts = []
    for code in scale.scales:
        lo, hi = sub_ranges[code]
        parts.append((lo, hi))  # reversal (lo + hi - v) maps [lo, hi] onto itself
    lo, hi = sum((p[0] for p in parts), Fraction(0)), sum((p[1] for p in parts), Fraction(0))
    if scale.method == "mean_of_scale_means":
        lo, hi = lo / len(parts), hi / len(parts)
    return lo, hi


def _check_rule(
    rule: Mapping[str, Any],
    where: str,
    items: Mapping[str, Item],
    scale_index: Mapping[str, int],
    scales: list[Scale],
    flag_index: Mapping[str, int],
    errors: list[str],
) -> None:
    kind = rule["type"]
    if kind == "cutoff":
        if rule["scale"] not in scale_index:
            errors.append(f"{where}.scale: unknown scale '{rule['scale']}'")
    elif kind == "cluster_criteria":
        for name, count in rule["min_counts"].items():
            if name not in scale_index:
                errors.append(f"{where}.min_counts.{name}: unknown scale '{name}'")
                continue
            scale = scales[scale_index[name]]
            if scale.method not in ("sum", "mean"):
                errors.append(f"{where}.min_counts.{name}: scale '{name}' has no items of its own")
            elif count > len(scale.items):
                errors.append(f"{where}.min_counts.{name}: {count} exceeds the scale's {len(scale.items)} items")
        for j, cond in enumerate(rule.get("also", [])):
            _check_item_condition(cond, f"{where}.also[{j}]", items, errors)
    elif kind == "cssrs_risk":
        levels = [lvl["level"] for lvl in rule["levels"]] + [rule["otherwise"]]
        _check_dupes(levels, f"{where}.levels", "level", errors)
        for j, lvl in enumerate(rule["levels"]):
            _check_refs(lvl["any_yes"], items, f"{where}.levels[{j}].any_yes", "item", errors)
            for k, code in enumerate(lvl["any_yes"]):
                if code in items and 1 not in items[code].values:
                    errors.append(f"{where}.levels[{j}].any_yes[{k}]: item '{code}' has no 'yes' (1) option")
    elif kind == "flag":
        if rule["flag"] not in flag_index:
            errors.append(f"{where}.flag: unknown flag '{rule['flag']}' (flags may only refer to earlier flags)")
    elif kind == "item":
        _check_item_condition(rule, where, items, errors)
    elif kind in ("all", "any"):
        for j, sub in enumerate(rule["rules"]):
            _check_rule(sub, f"{where}.rules[{j}]", items, scale_index, scales, flag_index, errors)


def _check_item_condition(cond: Mapping[str, Any], where: str, items: Mapping[str, Item], errors: list[str]) -> None:
    code = cond["item"]
    if code not in items:
        errors.append(f"{where}.item: unknown item '{code}'")
    elif "equals" in cond and cond["equals"] not in items[code].values:
        errors.append(f"{where}.equals: {cond['equals']} is not an option of '{code}'")


def _check_bands(bands: list[dict[str, Any]], scale: Scale, where: str, errors: list[str]) -> None:
    for k, band in enumerate(bands):
        if band["min"] >= band["max"]:
            errors.append(f"{where}.bands[{k}]: min must be below max")
        if k and band["min"] != bands[k - 1]["max"]:
            errors.append(f"{where}.bands[{k}].min: bands must be contiguous (previous max is {bands[k - 1]['max']})")
    if bands[0]["min"] != scale.range_min or bands[-1]["max"] != scale.range_max:
        errors.append(f"{where}.bands: must cover the scale range {scale.range_min}..{scale.range_max} exactly")


# --------------------------------------------------------------------------------------------------------- loading


def load_instrument_file(path: str | Path) -> Instrument:
    """Read and parse one instrument file. JSON and YAML (``.yaml``/``.yml``) are accepted."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InstrumentError([f"{path}: cannot read ({exc.strerror})"]) from exc
    try:
        data = yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InstrumentError([f"{path.name}: cannot parse: {exc}"]) from exc
    return parse_instrument(data)


def shipped_instrument_paths() -> list[Path]:
    """The instrument files shipped with the code, sorted by name."""
    return sorted(INSTRUMENTS_DIR.glob("*.json"))


def load_shipped_instruments() -> dict[str, Instrument]:
    """Every shipped instrument by code. Raises :class:`InstrumentError` if any file is invalid."""
    errors = check_shipped_instruments()
    if errors:
        raise InstrumentError(errors)
    return {inst.code: inst for inst in (load_instrument_file(p) for p in shipped_instrument_paths())}


def superseded_instrument_paths() -> list[Path]:
    """The earlier shipped versions (``superseded/CODE-VERSION.json``), sorted by name."""
    return sorted(SUPERSEDED_DIR.glob("*.json"))


def load_superseded_instruments() -> dict[tuple[str, str], Instrument]:
    """Every earlier shipped version by (code, version). Raises :class:`InstrumentError` if any file is invalid."""
    errors = check_shipped_instruments()
    if errors:
        raise InstrumentError(errors)
    return {(inst.code, inst.version): inst for inst in map(load_instrument_file, superseded_instrument_paths())}


def check_shipped_instruments() -> list[str]:
    """Problems with the shipped files (empty when all are valid); each message names its file. For system checks.
    A superseded file must be named ``CODE-VERSION.json`` after its content, and differ in version from the current
    file of its code."""
    problems: list[str] = []
    for path in superseded_instrument_paths():
        try:
            inst = load_instrument_file(path)
        except InstrumentError as exc:
            problems.extend(
                f"superseded/{e}" if e.startswith(path.name) else f"superseded/{path.name}: {e}" for e in exc.errors
            )
            continue
        if path.stem != f"{inst.code}-{inst.version}":
            problems.append(f"superseded/{path.name}: file name must be {inst.code}-{inst.version}.json")
    seen: dict[str, str] = {}
    for path in shipped_instrument_paths():
        try:
            inst = load_instrument_file(path)
        except InstrumentError as exc:
            problems.extend(f"{path.name}: {e}" if not e.startswith(path.name) else e for e in exc.errors)
            continue
        if inst.code != path.stem:
            problems.append(f"{path.name}: code '{inst.code}' does not match the file name")
        if inst.code in seen:
            problems.append(f"{path.name}: code '{inst.code}' also defined in {seen[inst.code]}")
        seen[inst.code] = path.name
        if any(p.stem == f"{inst.code}-{inst.version}" for p in superseded_instrument_paths()):
            problems.append(f"{path.name}: version {inst.version} is also a superseded version; bump 'version'")
    return problems


# --------------------------------------------------------------------------------------------------------- answers


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def visible_items(instrument: Instrument, answers: Mapping[str, Any]) -> list[Item]:
    """Items shown given ``answers``: an item with ``show_if`` is visible only when the item it depends on is itself
    visible and was answered with exactly the integer ``equals``."""
    visible: list[Item] = []
    shown: set[str] = set()
    for item in instrument.items:
        cond = item.show_if
        if cond is not None:
            value = answers.get(cond.item)
            if cond.item not in shown or not _is_int(value) or value != cond.equals:
                continue
        visible.append(item)
        shown.add(item.code)
    return visible


def validate_answers(
    instrument: Instrument, answers: Mapping[str, Any], require_complete: bool
) -> dict[str, list[str]]:
    """Per-item problems with ``answers`` (empty dict when valid).

    Reports unknown item codes, values that are not integers (bool, str such as "3", and float are refused), values
    not among the item's options, answers to items hidden by branching, and, when ``require_complete``, required
    visible items left unanswered. ``None`` counts as unanswered.
    """
    errors: dict[str, list[str]] = {}
    known = {it.code: it for it in instrument.items}
    visible = {it.code for it in visible_items(instrument, answers)}
    for code, value in answers.items():
        if code not in known:
            errors.setdefault(code, []).append(f"unknown item code '{code}' for {instrument.code}")
            continue
        if value is None:
            continue
        item = known[code]
        if not _is_int(value):
            errors.setdefault(code, []).append(f"wrong type: expected an integer, got {type(value).__name__}")
        elif value not in item.values:
            allowed = ", ".join(str(v) for v in item.values)
            errors.setdefault(code, []).append(f"value {value} is not an option (allowed: {allowed})")
        if code not in visible:
            cond = item.show_if
            assert cond is not None
            errors.setdefault(code, []).append(
                f"item is hidden by branching (shown only when {cond.item} = {cond.equals}) and must not be answered"
            )
    if require_complete:
        for item in instrument.items:
            if item.code in visible and item.required and answers.get(item.code) is None:
                errors.setdefault(item.code, []).append("required item not answered")
    return errors
