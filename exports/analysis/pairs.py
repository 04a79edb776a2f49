"""Each participant's scores at a pair of visits: the rows behind the per-participant dataset and the effect sizes.

A fixed number of queries whatever the number of participants: the participants' protocol versions (two) and the
scale scores at the visits in question (one). Unscheduled visits never count (they share no plan code).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from assessments.models import Score
from assessments.selectors import scores_at_sites
from exports.analysis.visits import comparison_visits
from scheduling.protocol import Protocol
from scheduling.selectors import protocol_versions_of_participants, visit_codes_at_sites

#: The candidate visit pairs of a protocol, in order of preference (empty: none).
VisitPair = Callable[[Protocol], tuple[tuple[str, str], ...]]


@dataclass
class Paired:
    """One participant's values at the two visits of the pair (None where not scored)."""

    first_visit: str
    second_visit: str
    values: dict[tuple[str, str], list[float | None]] = field(default_factory=dict)  # (instrument, scale) -> [1st, 2nd]
    raters: dict[str, list[int | None]] = field(default_factory=dict)  # instrument -> [user id at 1st, at 2nd]

    def value(self, instrument: str, scale: str, index: int) -> float | None:
        return self.values.get((instrument, scale), [None, None])[index]

    def change(self, instrument: str, scale: str) -> float | None:
        first, second = self.values.get((instrument, scale), [None, None])
        return None if first is None or second is None else second - first


def fixed_pair(first: str, second: str) -> VisitPair:
    """The same two visit codes whatever the protocol (when the caller names them)."""

    def pair(protocol: Protocol) -> tuple[tuple[str, str], ...]:
        return ((first, second),)

    return pair


def paired_scores(
    site_ids: Collection[int],
    study_ids: Collection[int] | None,
    scales: Iterable[tuple[str, str]],
    pair: VisitPair = comparison_visits,
) -> dict[int, Paired]:
    """Scores of ``scales`` at each participant's visit pair, by participant pk (participants without a schedule or
    a pair are absent)."""
    wanted = set(scales)
    versions = protocol_versions_of_participants(site_ids, study_ids)
    by_version: dict[int, tuple[tuple[str, str], ...]] = {}
    candidates: dict[int, tuple[tuple[str, str], ...]] = {}
    for participant_pk, version in versions.items():
        if version.pk not in by_version:
            by_version[version.pk] = pair(version.protocol())
        if by_version[version.pk]:
            candidates[participant_pk] = by_version[version.pk]
    pairs = {pk: options[0] for pk, options in candidates.items()}
    # Where a protocol compares arms at different visits, each participant takes the first pair whose endpoint is
    # one of their own planned visits: one query, and the arm itself is never read.
    ambiguous = {pk for pk, options in candidates.items() if len(options) > 1}
    if ambiguous:
        endpoints = {second for pk in ambiguous for _first, second in candidates[pk]}
        planned: dict[int, set[str]] = {}
        for participant_pk, code in visit_codes_at_sites(site_ids, study_ids, endpoints):
            planned.setdefault(participant_pk, set()).add(code)
        for pk in ambiguous:
            own = planned.get(pk, set())
            pairs[pk] = next((c for c in candidates[pk] if c[1] in own), candidates[pk][0])
    out = {pk: Paired(first, second) for pk, (first, second) in pairs.items()}
    codes = {code for p in pairs.values() for code in p}
    if not out or not wanted:
        return out
    rows = (
        scores_at_sites(site_ids, study_ids)
        .filter(
            kind=Score.Kind.SCALE,
            response__visit__unscheduled=False,
            response__visit__code__in=codes,
            response__instrument_code__in={i for i, _s in wanted},
        )
        .values_list(
            "response__participant_id",
            "response__visit__code",
            "response__instrument_code",
            "code",
            "value",
            "response__entered_by_id",
        )
    )
    for participant_pk, visit_code, instrument, code, value, entered_by in rows:
        paired = out.get(participant_pk)
        if paired is None:
            continue
        for index, wanted_code in enumerate((paired.first_visit, paired.second_visit)):
            if visit_code != wanted_code:
                continue
            if (instrument, code) in wanted:
                paired.values.setdefault((instrument, code), [None, None])[index] = value
            paired.raters.setdefault(instrument, [None, None])[index] = entered_by
    return out
