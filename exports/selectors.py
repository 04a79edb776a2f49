"""Who may export what: the sites in scope, the studies, and whether the arm and calendar dates are included."""

from __future__ import annotations

from django.db.models import Q

from exports.datasets import Scope
from participants.access import arm_visible_in_export, export_site_ids
from participants.models import Site, Study
from trialsite.errors import PermissionDeniedError, ServiceError

DATES_PERMISSION = "exports.export_dates"


def _codes(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


def export_scope(user, *, site_codes: list[str], study_codes: list[str], dates: bool) -> tuple[Scope, list[Site]]:
    """The scope for ``user`` (None: the command line's default, every site, blinded, no dates).

    Raises PermissionDeniedError (403) when the user may not export from a requested site (or from anywhere), and
    ServiceError (400) naming the parameter for an unknown site or study code."""
    if user is None:
        allowed = set(Site.objects.values_list("id", flat=True))
    else:
        allowed = export_site_ids(user)
        if not allowed:
            raise PermissionDeniedError("exports are for statisticians, investigators and administrators")
    sites = list(Site.objects.order_by("code"))
    by_code = {s.code: s for s in sites}
    site_codes, study_codes = _codes(site_codes), _codes(study_codes)
    if site_codes:
        unknown = [c for c in site_codes if c not in by_code]
        if unknown:
            raise ServiceError("unknown site", field_errors={"site": [f"no site {', '.join(unknown)}"]})
        refused = [c for c in site_codes if by_code[c].id not in allowed]
        if refused:
            raise PermissionDeniedError(f"your role at {', '.join(refused)} cannot export")
        chosen = [by_code[c] for c in site_codes]
    else:
        chosen = [s for s in sites if s.id in allowed]
    site_ids = tuple(sorted(s.id for s in chosen))
    studies = list(Study.objects.filter(Q(sites__in=site_ids) | Q(participants__site_id__in=site_ids)).distinct())
    study_ids = None
    if study_codes:
        known = {s.code: s for s in Study.objects.filter(code__in=study_codes)}
        unknown = [c for c in study_codes if c not in known]
        if unknown:
            raise ServiceError("unknown study", field_errors={"study": [f"no study {', '.join(unknown)}"]})
        studies = [known[c] for c in study_codes]
        study_ids = tuple(sorted(s.id for s in studies))
    if dates and (user is None or not user.has_perm(DATES_PERMISSION)):
        raise PermissionDeniedError(
            "calendar dates need the exports.export_dates permission", code="dates_not_permitted"
        )
    scope = Scope(
        site_ids=site_ids,
        study_ids=study_ids,
        with_arm=arm_visible_in_export(user, site_ids, studies),
        with_dates=dates,
    )
    return scope, chosen
