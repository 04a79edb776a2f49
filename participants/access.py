"""Who may do and see what: the one place for roles, site scoping, blinding and contact access.

It lives in participants because roles are staff memberships, which participants owns; every other app reads
participants, so every app can ask here without an import running the wrong way.

Every app asks these questions here; none keeps its own helpers. A role is held per site (a StaffMembership); the
superuser is treated as an administrator everywhere. Nothing here writes.

- Site scoping: ``site_ids_for(user)`` is the set of sites whose objects the user may see; everything else is a 404.
- Roles: ``roles_at(user, site_id)``, ``has_role``, ``require_role`` (raises a 403 naming what was refused).
- Blinding: ``can_see_allocation(user, site_id=..., study=...)`` for one participant's arm, and
  ``arm_visible_in_export`` for a multi-site dataset.
- Contact access: ``can_see_contact(user, site_id)``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from django.core.signals import request_started

from trialsite.errors import PermissionDeniedError
from trialsite.roles import ALWAYS_BLINDED, ALWAYS_UNBLINDED, CONTACT, MANAGE, Role

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User

    #: The person (or, as None, the system: a command, a task, the demo seed) on whose behalf a service writes.
    #: Services take it as ``by`` and record it on the audit row.
    Actor: TypeAlias = AbstractBaseUser | AnonymousUser | None
else:
    Actor = Any


class _Blindable(Protocol):
    @property
    def blinded(self) -> bool: ...

    @property
    def unblinded(self) -> bool: ...


class _SafetyBlindable(Protocol):
    @property
    def hides_safety_from_raters(self) -> bool: ...


# Roles that may export: statisticians, investigators and administrators.
EXPORT_ROLES = frozenset({Role.STATISTICIAN, Role.UNBLINDED_STATISTICIAN, Role.INVESTIGATOR, Role.ADMIN})
# Roles that read and acknowledge safety alerts.
ALERT_READERS = frozenset({Role.COORDINATOR, Role.INVESTIGATOR, Role.ADMIN})
# Roles that may unblind a study and acknowledge safety alerts.
INVESTIGATORS = frozenset({Role.INVESTIGATOR, Role.ADMIN})

# Roles are read once per request and kept on the user object for that request only: a list of participants asks
# "may this user see the arm here?" per row, which must not cost a query per row, and a role revoked between two
# requests must take effect on the next one.
_request_numbers = itertools.count(1)
_request = threading.local()


def _new_request(**kwargs: object) -> None:
    _request.number = next(_request_numbers)


request_started.connect(_new_request, dispatch_uid="participants_access_roles_cache")


def is_superuser(user: Actor) -> bool:
    return bool(getattr(user, "is_superuser", False))


def roles_by_site(user: Actor) -> dict[int, set[str]]:
    """Every role the user holds, by site id (one query per request)."""
    from participants.models import StaffMembership

    if user is None:
        return {}
    number = getattr(_request, "number", None)
    cached = getattr(user, "_trialsite_roles", None)
    if cached is not None and number is not None and cached[0] == number:
        return dict(cached[1])
    roles: dict[int, set[str]] = {}
    if user.is_authenticated:
        for site_id, role in StaffMembership.objects.filter(user_id=user.pk).values_list("site_id", "role"):
            roles.setdefault(site_id, set()).add(role)
    user._trialsite_roles = (number, roles)  # type: ignore[union-attr]
    return roles


def site_ids_for(user: Actor) -> set[int]:
    """The sites whose objects the user may see (superusers: every site)."""
    from participants.models import Site

    if is_superuser(user):
        return set(Site.objects.values_list("id", flat=True))
    return set(roles_by_site(user))


def roles_at(user: Actor, site_id: int) -> set[str]:
    if is_superuser(user):
        return {Role.ADMIN.value}
    return roles_by_site(user).get(site_id, set())


def has_role(user: Actor, site_id: int, roles: Iterable[str]) -> bool:
    return bool(roles_at(user, site_id) & set(roles))


def require_role(user: Actor, site_id: int, roles: Iterable[str], what: str) -> None:
    """Raise a 403 naming ``what`` unless the user holds one of ``roles`` at the site."""
    if not has_role(user, site_id, roles):
        raise PermissionDeniedError(f"your role at this site cannot {what}")


def site_ids_with(user: Actor, roles: Iterable[str]) -> set[int]:
    """The sites where the user holds one of ``roles`` (superusers: every site)."""
    wanted = set(roles)
    if is_superuser(user):
        return site_ids_for(user)
    return {site_id for site_id, held in roles_by_site(user).items() if held & wanted}


def can_manage(user: Actor, site_id: int) -> bool:
    """Coordinators, investigators and administrators manage participants: create, screen, consent, enroll, ..."""
    return has_role(user, site_id, MANAGE)


def managed_site_ids(user: Actor) -> set[int]:
    return site_ids_with(user, MANAGE)


def can_see_contact(user: Actor, site_id: int) -> bool:
    """Contact details (PHI) are for the roles that contact participants."""
    return has_role(user, site_id, CONTACT)


def can_see_allocation(user: Actor, *, site_id: int, study: _Blindable) -> bool:
    """Blinding by construction: a role that is blinded at a site never sees an arm there, whatever else it holds."""
    roles = roles_at(user, site_id)
    if not roles or roles & ALWAYS_BLINDED:
        return False
    if roles & ALWAYS_UNBLINDED:
        return True
    return not study.blinded or study.unblinded


def export_site_ids(user: Actor) -> set[int]:
    """Sites where the user holds a role that may export (superusers: every site)."""
    return site_ids_with(user, EXPORT_ROLES)


def arm_visible_in_export(user: Actor, site_ids: Iterable[int], studies: Iterable[_Blindable]) -> bool:
    """The arm column exists only for an unblinded statistician, at every site exported, and only once every study
    exported has been unblinded by an investigator (an open-label study needs no unblinding). Any always-blinded role
    held at one of the sites wins: the column is then absent."""
    if user is None:
        return False
    site_ids = list(site_ids)
    if not site_ids:
        return False
    for sid in site_ids:
        roles = roles_at(user, sid)
        if Role.UNBLINDED_STATISTICIAN not in roles or roles & ALWAYS_BLINDED:
            return False
    return all(study.unblinded or not study.blinded for study in studies)


def can_unblind(user: Actor, site_ids: Iterable[int]) -> bool:
    """An investigator or administrator at one of the study's sites (or a superuser) may unblind it."""
    return is_superuser(user) or any(roles_at(user, sid) & INVESTIGATORS for sid in site_ids)


# Roles that manage a study's allocation list (generate or import it) and so may know its block sizes; no one else
# (coordinators, therapists, investigators, raters, statisticians) is shown them.
ALLOCATION_LIST_MANAGERS = frozenset({Role.ADMIN, Role.UNBLINDED_STATISTICIAN})


def may_manage_allocation_list(user: Actor, site_ids: Iterable[int]) -> bool:
    """An administrator or unblinded statistician at one of the study's sites, a superuser, or the system (a
    command's ``--by`` is checked as that person)."""
    return user is None or is_superuser(user) or any(roles_at(user, sid) & ALLOCATION_LIST_MANAGERS for sid in site_ids)


def rater_site_ids(user: Actor) -> set[int]:
    """Sites where the user is an independent rater. There the studies that hide safety data from raters
    (``Study.hides_safety_from_raters``) show them no adverse event, whatever other role they also hold: as with the
    arm, the blinded role wins. A superuser is no rater anywhere."""
    if is_superuser(user):
        return set()
    return {site_id for site_id, held in roles_by_site(user).items() if Role.RATER in held}


def safety_hidden_from(user: Actor, *, site_id: int, study: _SafetyBlindable) -> bool:
    """May this user not see one participant's safety data (adverse events)?"""
    return site_id in rater_site_ids(user) and study.hides_safety_from_raters


def can_acknowledge_alert(user: Actor, site_id: int) -> bool:
    return has_role(user, site_id, INVESTIGATORS)


def alert_site_ids(user: Actor) -> set[int]:
    return site_ids_with(user, ALERT_READERS)


def may_configure(user: Actor, site_id: int | None = None) -> bool:
    """Study configuration (studies, sites, arms, criteria, rooms, consent documents) is for administrators: a
    superuser anywhere, or a site's administrator for what belongs to that site. The system (``None``: a command,
    the demo seed, a test's setup) configures freely; a request always carries a user, never ``None``."""
    if user is None or is_superuser(user):
        return True
    return site_id is not None and Role.ADMIN in roles_at(user, site_id)


def require_configure(user: Actor, what: str, site_id: int | None = None) -> None:
    if not may_configure(user, site_id):
        raise PermissionDeniedError(f"only an administrator may {what}")


def may_publish_consent(user: Actor, site_ids: Iterable[int]) -> bool:
    """A new consent version (approved by the ethics board) is entered by the staff who manage participants at one
    of the study's sites, or by an administrator (and the system). The API accepts administrators only."""
    return may_configure(user) or any(can_manage(user, sid) for sid in site_ids)


def require_publish_consent(user: Actor, site_ids: Iterable[int]) -> None:
    if not may_publish_consent(user, site_ids):
        raise PermissionDeniedError("your role cannot publish a consent version of this study")


def acting_user(by: Actor) -> User | None:
    """The account behind ``by`` for a "who did it" column: None for the system or an anonymous request."""
    from django.contrib.auth import get_user_model

    return by if isinstance(by, get_user_model()) else None


def acting_person(by: Actor, what: str) -> User:
    """The account behind ``by`` where the record must name a person (who answered, who obtained consent)."""
    user = acting_user(by)
    if user is None:
        raise PermissionDeniedError(f"{what} must be done by a signed-in member of staff")
    return user
