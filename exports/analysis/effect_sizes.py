"""Pre/post effect sizes per study, scale, visit pair and arm, read from the same scores as the per_participant
dataset (so a statistician reproduces them from its CSV) and computed with SciPy (exports.analysis.stats).

Blinding follows the exports exactly: the caller's scope (sites, studies) and whether arms are visible come from
exports.selectors.export_scope, so pooled figures are all a blinded role ever gets, and per-arm figures appear only
for an unblinded statistician once every study in scope is unblinded. A read: it writes nothing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exports.analysis.pairs import Paired, VisitPair, fixed_pair, paired_scores
from exports.analysis.scales import ANALYSIS_SCALES, VARIABLES, variable
from exports.analysis.stats import CI_METHOD, CONFIDENCE, paired_summary
from exports.analysis.visits import comparison_visits
from exports.datasets.base import participant_contexts
from exports.selectors import export_scope
from participants.access import Actor
from participants.selectors import studies_at_sites
from trialsite.errors import ServiceError
from trialsite.replica import statistician_reads

PARAMETERS = ("study", "site", "scale", "from_visit", "to_visit")
_VISIT_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")

METHOD = {
    "change": "second visit minus first visit, over participants scored at both",
    "sd_change": "sample standard deviation of the change (n - 1)",
    "d_z": "mean change / SD of change (Cohen's d_z)",
    "ci": f"{int(CONFIDENCE * 100)}% confidence interval of d_z, {CI_METHOD}: limits are the noncentrality "
    "parameters of scipy.stats.nct at which the observed t = d_z * sqrt(n) sits at the 97.5th and 2.5th percentile, "
    "divided by sqrt(n)",
    "p_value": "two-sided paired t-test, scipy.stats.ttest_rel(second, first)",
    "visits": "default: the protocol's BASELINE and its endpoint (ENDPOINT, else the first assessment visit every arm "
    "has); from_visit and to_visit name another pair",
}


@dataclass(frozen=True)
class EffectSizeQuery:
    studies: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    scales: tuple[tuple[str, str], ...] = ANALYSIS_SCALES
    visits: tuple[str, str] | None = None


def _values(params: Mapping[str, Any], name: str) -> list[str]:
    raw = params.getlist(name) if hasattr(params, "getlist") else [params[name]] if name in params else []
    out: list[str] = []
    for value in raw:
        text = str(value)
        if "\x00" in text:
            raise ServiceError(f"bad {name}", field_errors={name: ["Null characters are not allowed."]})
        out.extend(part.strip() for part in text.split(",") if part.strip())
    return out


def parse_query(params: Mapping[str, Any]) -> EffectSizeQuery:
    """The query parameters, checked: every problem is a 400 naming its parameter."""
    errors: dict[str, list[str]] = {}
    for name in sorted(set(params) - set(PARAMETERS)):
        errors[name] = [f"not a parameter; accepted: {', '.join(PARAMETERS)}"]
    scales = _values(params, "scale")
    unknown = [s for s in scales if s not in VARIABLES]
    if unknown:
        errors["scale"] = [f"no analysis scale {', '.join(unknown)}; one of {', '.join(VARIABLES)}"]
    visits: dict[str, str] = {}
    for name in ("from_visit", "to_visit"):
        given = _values(params, name)
        if len(given) > 1:
            errors[name] = ["give a single visit code"]
        elif given and not _VISIT_CODE.match(given[0]):
            errors[name] = ["letters, digits, '_', '.', '-' (max 40)"]
        elif given:
            visits[name] = given[0]
    if len(visits) == 1:
        missing = "to_visit" if "from_visit" in visits else "from_visit"
        errors[missing] = ["give both from_visit and to_visit, or neither"]
    elif len(visits) == 2 and visits["from_visit"] == visits["to_visit"]:
        errors["to_visit"] = ["a visit other than from_visit"]
    if errors:
        raise ServiceError("bad effect-size query", field_errors=errors)
    return EffectSizeQuery(
        studies=tuple(_values(params, "study")),
        sites=tuple(_values(params, "site")),
        scales=tuple(VARIABLES[s] for s in dict.fromkeys(scales)) or ANALYSIS_SCALES,
        visits=(visits["from_visit"], visits["to_visit"]) if len(visits) == 2 else None,
    )


def effect_sizes(user: Actor, params: Mapping[str, Any]) -> dict[str, Any]:
    """Effect sizes for ``user`` (None: the command line's default, every site, blinded). Raises ServiceError (400)
    for a bad parameter and PermissionDeniedError (403) for a user who may not export. Six queries whatever the
    number of participants."""
    query = parse_query(params)
    scope, _sites = export_scope(user, site_codes=list(query.sites), study_codes=list(query.studies), dates=False)
    pair: VisitPair = fixed_pair(*query.visits) if query.visits else comparison_visits
    # The scope was read from the primary; the scores are the statistician's reads (the replica when configured).
    with statistician_reads():
        contexts = participant_contexts(scope)
        paired = paired_scores(scope.site_ids, scope.study_ids, query.scales, pair)
        codes = dict(studies_at_sites(scope.site_ids).values_list("id", "code"))
    # One group per study, whatever visit pair each participant has: a protocol may compare its arms at different
    # visits, and grouping by visits would then hand a blinded caller per-arm figures under another name.
    groups: dict[int, dict[str | None, list[Paired]]] = defaultdict(lambda: defaultdict(list))
    for pk, values in paired.items():
        ctx = contexts.get(pk)
        if ctx is None:
            continue
        groups[ctx.study_id][None].append(values)
        if scope.with_arm and ctx.arm:
            groups[ctx.study_id][ctx.arm].append(values)
    results: list[dict[str, Any]] = []
    for study_id, by_arm in sorted(groups.items(), key=lambda g: codes.get(g[0], "")):
        arms: list[str | None] = [None, *sorted(a for a in by_arm if a is not None)]
        for instrument, code in query.scales:
            for arm in arms:
                members = by_arm[arm]
                before: list[float] = []
                after: list[float] = []
                for p in members:
                    first_value, second_value = p.value(instrument, code, 0), p.value(instrument, code, 1)
                    if first_value is not None and second_value is not None:
                        before.append(first_value)
                        after.append(second_value)
                summary = paired_summary(before, after)
                row: dict[str, Any] = {
                    "study": codes.get(study_id, ""),
                    "scale": variable(instrument, code),
                    "instrument": instrument,
                    "scale_code": code,
                    # The codes of the protocol's pair(s) in this group, e.g. "POST|WAIT_END" for a delayed arm.
                    "from_visit": "|".join(sorted({p.first_visit for p in members})),
                    "to_visit": "|".join(sorted({p.second_visit for p in members})),
                }
                if scope.with_arm:
                    # The key exists only for a caller who may see arms: a blinded body never names it.
                    row["arm"] = arm
                row.update(
                    n=summary.n,
                    mean_change=summary.mean_change,
                    sd_change=summary.sd_change,
                    d_z=summary.d_z,
                    ci_low=summary.ci_low,
                    ci_high=summary.ci_high,
                    t=summary.t,
                    p_value=summary.p_value,
                )
                results.append(row)
    return {"confidence": CONFIDENCE, "ci_method": CI_METHOD, "method": METHOD, "results": results}
