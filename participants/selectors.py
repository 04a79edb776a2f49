"""Reads scoped by the acting user's sites and blinding. Views never filter by hand."""

from __future__ import annotations

import itertools
import threading

from django.core.signals import request_started
from django.db.models import QuerySet

from participants.models import Participant, Site, StaffMembership, Study
from trialsite.roles import ALWAYS_BLINDED, ALWAYS_UNBLINDED, CONTACT, MANAGE

# Roles are read once per request and kept on the user object for that request only: a list of participants asks
# "may this user see the arm here?" per row, which must not cost a query per row, and a role revoked between two
# requests must take effect on the next one.
_request_numbers = itertools.count(1)
_request = threading.local()


def _new_request(**kwargs) -> None:
    _request.number = next(_request_numbers)


request_started.connect(_new_request, dispatch_uid="participants_roles_cache")


def roles_by_site(user) -> dict[int, set[str]]:
    number = getattr(_request, "number", None)
    cached = getattr(user, "_trialsite_roles", None)
    if cached is not None and number is not None and cached[0] == number:
        return cached[1]
    roles: dict[int, set[str]] = {}
    if user.is_authenticated:
        for site_id, role in StaffMembership.objects.filter(user=user).values_list("site_id", "role"):
            roles.setdefault(site_id, set()).add(role)
    user._trialsite_roles = (number, roles)
    return roles


def site_ids_for(user) -> set[int]:
    if user.is_superuser:
        return set(Site.objects.values_list("id", flat=True))
    return set(roles_by_site(user))


def roles_at(user, site_id: int) -> set[str]:
    if user.is_superuser:
        return {"admin"}
    return roles_by_site(user).get(site_id, set())


def has_role(user, site_id: int, roles) -> bool:
    return bool(roles_at(user, site_id) & set(roles))


def can_manage(user, site_id: int) -> bool:
    return has_role(user, site_id, MANAGE)


def can_see_contact(user, site_id: int) -> bool:
    return has_role(user, site_id, CONTACT)


def can_see_allocation(user, *, site_id: int, study: Study) -> bool:
    """Blinding by construction: a role that is blinded at a site never sees an arm there, whatever else it holds."""
    roles = roles_at(user, site_id)
    if not roles or roles & ALWAYS_BLINDED:
        return False
    if roles & ALWAYS_UNBLINDED:
        return True
    return not study.blinded or study.unblinded


def sites_for(user) -> QuerySet[Site]:
    return Site.objects.filter(id__in=site_ids_for(user)).order_by("code")


def studies_for(user) -> QuerySet[Study]:
    return Study.objects.filter(sites__in=site_ids_for(user)).distinct().prefetch_related("arms").order_by("code")


def participants_for(user) -> QuerySet[Participant]:
    """Participants at the user's sites. The allocation is not joined here: callers that may show it ask for it."""
    return Participant.objects.filter(site_id__in=site_ids_for(user)).select_related("study", "site")


def participant_get(user, participant_id: str) -> Participant:
    """One participant, or Http404 if it does not exist or lies outside the user's sites (the two look the same)."""
    from django.shortcuts import get_object_or_404

    return get_object_or_404(participants_for(user), participant_id=participant_id)


def current_consent_document(study: Study):
    return study.consent_documents.order_by("-published_at", "-id").first()
