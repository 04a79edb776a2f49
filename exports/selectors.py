"""Who may export what: the sites in scope, the studies, and whether the arm and calendar dates are included; which
data freezes a user may see."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import PermissionsMixin

from exports.columns import Scope
from exports.errors import NotFound
from exports.models import ExportFreeze
from participants.access import Actor, arm_visible_in_export, export_site_ids, rater_site_ids, site_ids_for
from participants.models import Site, Study
from participants.selectors import sites_all, studies_at_sites, studies_by_code, studies_of_sites
from trialsite.errors import PermissionDeniedError, ServiceError

DATES_PERMISSION = "exports.export_dates"
_NO_EXPORT = "exports are for statisticians, investigators and administrators"


def _codes(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


def _may_export_dates(user: Actor) -> bool:
    return isinstance(user, PermissionsMixin) and user.has_perm(DATES_PERMISSION)


def export_scope(
    user: Actor, *, site_codes: list[str], study_codes: list[str], dates: bool
) -> tuple[Scope, list[Site]]:
    """The scope for ``user`` (None: the command line's default, every site, blinded, no dates).

    Raises PermissionDeniedError (403) when the user may not export from a requested site of theirs (or from
    anywhere), and ServiceError (400) naming the parameter for an unknown site or study code. A site the user holds
    no role at, and a study of no site of theirs, are unknown to them: the answer does not tell whether it exists."""
    if user is None:
        allowed = set(sites_all().values_list("id", flat=True))
        visible = allowed
    else:
        allowed = export_site_ids(user)
        if not allowed:
            raise PermissionDeniedError(_NO_EXPORT)
        visible = site_ids_for(user)
    sites = list(sites_all())
    by_code = {s.code: s for s in sites if s.id in visible}
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
    studies = list(studies_of_sites(site_ids))
    study_ids = None
    if study_codes:
        reachable = {study.pk for study in studies_of_sites(tuple(sorted(visible)))}
        known = {code: study for code, study in studies_by_code(study_codes).items() if study.pk in reachable}
        unknown = [c for c in study_codes if c not in known]
        if unknown:
            raise ServiceError("unknown study", field_errors={"study": [f"no study {', '.join(unknown)}"]})
        studies = [known[c] for c in study_codes]
        study_ids = tuple(sorted(s.id for s in studies))
    if dates and not _may_export_dates(user):
        raise PermissionDeniedError(
            "calendar dates need the exports.export_dates permission", code="dates_not_permitted"
        )
    scope = Scope(
        site_ids=site_ids,
        study_ids=study_ids,
        with_arm=arm_visible_in_export(user, site_ids, studies),
        with_dates=dates,
        rater_site_ids=tuple(sorted(rater_site_ids(user) & set(site_ids))) if user is not None else (),
    )
    return scope, chosen


def freeze_visible(
    user: Actor,
    freeze: ExportFreeze,
    *,
    site_ids: set[int] | None = None,
    sites_by_code: dict[str, int] | None = None,
    studies: Sequence[Study] | None = None,
) -> bool:
    """A freeze is for users who could export every site it holds now, and (if it holds arms) see them there.
    ``studies`` (with their sites prefetched) lets a list answer for many freezes with the same few queries."""
    allowed = export_site_ids(user) if site_ids is None else site_ids
    by_code = sites_by_code if sites_by_code is not None else _site_ids_by_code()
    ids = [by_code.get(code) for code in freeze.site_codes]
    known = [i for i in ids if i is not None]
    if len(known) < len(ids) or any(i not in allowed for i in known):
        return False
    if freeze.includes_arm:
        if studies is None:
            return arm_visible_in_export(user, known, studies_at_sites(known))
        held = set(known)
        return arm_visible_in_export(
            user, known, [s for s in studies if any(site.pk in held for site in s.sites.all())]
        )
    return True


def _site_ids_by_code() -> dict[str, int]:
    return {s.code: s.id for s in sites_all()}


def freezes_for(user: Actor) -> list[ExportFreeze]:
    """The freezes ``user`` may download, newest first."""
    allowed = export_site_ids(user)
    if not allowed:
        raise PermissionDeniedError(_NO_EXPORT)
    by_code = _site_ids_by_code()
    studies = list(studies_at_sites(allowed).prefetch_related("sites"))
    return [
        f
        for f in ExportFreeze.objects.select_related("created_by")
        if freeze_visible(user, f, site_ids=allowed, sites_by_code=by_code, studies=studies)
    ]


def freeze_get(user: Actor, freeze_id: int) -> ExportFreeze:
    """One freeze ``user`` may download: a 403 for a user who may export nothing, else a 404 for a freeze that does
    not exist or that the user may not see (the two look the same)."""
    freeze = ExportFreeze.objects.filter(pk=freeze_id).first()
    if freeze is None or not freeze_visible(user, freeze):
        if not export_site_ids(user):
            raise PermissionDeniedError(_NO_EXPORT)
        raise NotFound("no such freeze")
    return freeze
