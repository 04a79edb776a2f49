"""Staff roles: a role is held per site (a StaffMembership) and mirrored as a Django group of the same name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import Group
from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_record
from participants import access
from participants.access import Actor
from participants.models import Site, StaffMembership
from participants.services.status import _has_reason
from trialsite.errors import ServiceError
from trialsite.roles import Role

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _require_role_name(role: str) -> None:
    if role not in Role.values:
        raise ServiceError("unknown role", field_errors={"role": [f"one of {', '.join(Role.values)}"]})


@transaction.atomic
def membership_grant(*, user: User, site: Site, role: str, by: Actor) -> StaffMembership:
    """Give ``user`` a role at a site (a site's administrator or a superuser). Granting a role held already
    changes nothing."""
    access.require_configure(by, "grant roles at this site", site_id=site.pk)
    _require_role_name(role)
    membership, created = StaffMembership.objects.get_or_create(user=user, site=site, role=role)
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    if created:
        audit_record(
            by=by,
            action=AuditEvent.Action.ROLE_CHANGE,
            entity_type="user",
            entity_id=user.pk,
            site_code=site.code,
            changes=[("role", None, f"{role}@{site.code}")],
        )
    return membership


@transaction.atomic
def membership_revoke(*, user: User, site: Site, role: str, by: Actor, reason: str) -> None:
    """Take a role at a site away, with a reason. The group goes once the user holds the role at no site."""
    access.require_configure(by, "revoke roles at this site", site_id=site.pk)
    if not _has_reason(reason):
        raise ServiceError("revoking a role needs a reason", field_errors={"reason": ["required"]})
    deleted, _ = StaffMembership.objects.filter(user=user, site=site, role=role).delete()
    if deleted:
        if not StaffMembership.objects.filter(user=user, role=role).exists():
            user.groups.remove(*Group.objects.filter(name=role))
        audit_record(
            by=by,
            action=AuditEvent.Action.ROLE_CHANGE,
            entity_type="user",
            entity_id=user.pk,
            site_code=site.code,
            changes=[("role", f"{role}@{site.code}", None)],
            reason=reason,
        )
