"""Which visits a pre/post comparison uses: the protocol's baseline and its endpoint.

One small function on purpose: protocols are gaining a declared primary comparison (per arm: a delayed-treatment arm
may be compared at the end of its delay), and this is the one place that will read it. It answers the candidate
pairs of a protocol, those whose endpoint belongs to fewer arms first (WAIT_END, the delayed arm's own, before POST,
which both arms have); a participant takes the first pair whose endpoint is among their own planned visits
(exports.analysis.pairs), so no caller needs the arm to find it. A protocol that declares its primary comparison
(``primary_comparison``: mapp-v2, samati-v2) gives its arms' pairs; one written before the declaration gives one pair:
the shared visit coded ENDPOINT (MAPP-style), else the first assessment visit that every arm has (SAMATI-style: POST).
"""

from __future__ import annotations

from scheduling.protocol import Protocol, VisitKind

BASELINE = "BASELINE"
ENDPOINT = "ENDPOINT"


def comparison_visits(protocol: Protocol) -> tuple[tuple[str, str], ...]:
    """The (baseline visit code, endpoint visit code) pairs of ``protocol``, in order of preference; empty when it
    has none."""
    declared = protocol.primary_comparison
    if declared is not None:
        # The protocol's own declaration: each arm's pair, once each, those whose endpoint fewer arms have first.
        pairs = list(dict.fromkeys((c.baseline, c.endpoint) for c in declared.arms.values()))
        arms_with = {code: sum(1 for arm in protocol.arms.values() if code in arm.codes) for _, code in pairs}
        return tuple(sorted(pairs, key=lambda pair: arms_with[pair[1]]))
    shared = protocol.shared_visit_codes()
    if BASELINE not in shared:
        return ()
    if ENDPOINT in shared:
        return ((BASELINE, ENDPOINT),)
    first_arm = next(iter(protocol.arms.values()))
    for visit in first_arm.visits:
        if visit.kind == VisitKind.ASSESSMENT and visit.code in shared:
            return ((BASELINE, visit.code),)
    return ()
