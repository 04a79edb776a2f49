"""Sites: creating a site, changing its details, and the studies it takes part in."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_record, diff
from participants import access
from participants.access import Actor
from participants.models import Participant, Site, Study
from participants.services._validation import _full_clean
from participants.services.status import _has_reason
from trialsite.errors import Conflict, ServiceError


def _codes(studies: Iterable[Study]) -> list[str]:
    return sorted(study.code for study in studies)


@transaction.atomic
def site_create(
    *,
    code: str,
    name: str,
    time_zone: str,
    by: Actor,
    contact_email: str = "",
    contact_phone: str = "",
    studies: Iterable[Study] = (),
) -> Site:
    """Create a site (superusers) and the studies it takes part in."""
    access.require_configure(by, "create a site")
    if Site.objects.filter(code=code).exists():
        raise ServiceError(f"site {code} already exists", field_errors={"code": [f"site {code} already exists"]})
    values: dict[str, Any] = {
        "code": code,
        "name": name,
        "time_zone": time_zone,
        "contact_email": contact_email,
        "contact_phone": contact_phone,
    }
    site = Site(**values)
    _full_clean(site, "site")
    site.save()
    studies = list(studies)
    site.studies.set(studies)
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="site",
        entity_id=site.pk,
        site_code=site.code,
        changes=[(field, None, value) for field, value in values.items()] + [("studies", None, _codes(studies))],
    )
    return site


@transaction.atomic
def site_update(
    *,
    site: Site,
    by: Actor,
    reason: str | None = None,
    name: str | None = None,
    time_zone: str | None = None,
    contact_email: str | None = None,
    contact_phone: str | None = None,
    studies: Iterable[Study] | None = None,
) -> Site:
    """Change a site's details (its administrators or a superuser) or its studies (superusers), with a reason. The
    code never changes: participant ids carry it. A study with participants at the site stays."""
    site = Site.objects.select_for_update().get(pk=site.pk)
    wanted = {"name": name, "time_zone": time_zone, "contact_email": contact_email, "contact_phone": contact_phone}
    changes = diff(site, {field: value for field, value in wanted.items() if value is not None})
    if changes:
        access.require_configure(by, "change this site", site_id=site.pk)
    old_studies = list(site.studies.all())
    new_studies = list(studies) if studies is not None else old_studies
    studies_change = set(_codes(old_studies)) != set(_codes(new_studies))
    if studies_change:
        access.require_configure(by, "change the studies of a site")
    if not changes and not studies_change:
        return site
    if not _has_reason(reason):
        raise ServiceError("a reason is required to change a site", field_errors={"reason": ["required"]})
    if studies_change:
        kept = {study.pk for study in new_studies}
        dropped = [study for study in old_studies if study.pk not in kept]
        busy = sorted(
            Participant.objects.filter(site=site, study__in=dropped).values_list("study__code", flat=True).distinct()
        )
        if busy:
            raise Conflict(
                f"site {site.code} has participants in {', '.join(busy)}: it stays a site of that study",
                field_errors={"studies": [f"participants at {site.code} in {', '.join(busy)}"]},
            )
    for field, _, new in changes:
        setattr(site, field, new)
    if changes:
        _full_clean(site, "site")
        site.save(update_fields=[field for field, _, _ in changes])
    if studies_change:
        site.studies.set(new_studies)
        changes.append(("studies", _codes(old_studies), _codes(new_studies)))
    audit_record(
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="site",
        entity_id=site.pk,
        site_code=site.code,
        changes=changes,
        reason=reason,
    )
    return site
