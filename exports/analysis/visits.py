"""Which visits a pre/post comparison uses: the protocol's baseline and its endpoint.

One small function on purpose: protocols are gaining a declared primary comparison, and this is the one place that
will read it. Until then the endpoint is the shared visit coded ENDPOINT (MAPP-style), else the first assessment
visit that every arm has (SAMATI-style: POST), so the visit pair never depends on, and never reveals, the arm.
"""

from __future__ import annotations

from scheduling.protocol import Protocol, VisitKind

BASELINE = "BASELINE"
ENDPOINT = "ENDPOINT"


def comparison_visits(protocol: Protocol) -> tuple[str, str] | None:
    """(baseline visit code, endpoint visit code) of ``protocol``; None when it has no such pair."""
    shared = protocol.shared_visit_codes()
    if BASELINE not in shared:
        return None
    if ENDPOINT in shared:
        return BASELINE, ENDPOINT
    first_arm = next(iter(protocol.arms.values()))
    for visit in first_arm.visits:
        if visit.kind == VisitKind.ASSESSMENT and visit.code in shared:
            return BASELINE, visit.code
    return None
