"""Reads scoped by the acting user's sites and blinding. Views never filter by hand."""

from __future__ import annotations

from django.db.models import QuerySet

from participants.access import site_ids_for
from participants.models import Participant, Site, Study


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


# --- reads for notifications ---


def participant_with_study_and_contact(participant_pk: int) -> Participant:
    """One participant by primary key with its site, study and contact details, in one query. No user scoping: the
    reminder planner and sender run as the system, and the contact details they read never leave the message."""
    return Participant.objects.select_related("site", "study", "contact").get(pk=participant_pk)


def participant_pks_with_status(statuses: frozenset[str]) -> set[int]:
    return set(Participant.objects.filter(status__in=statuses).values_list("id", flat=True))


def staff_user_ids_with_email(*, site_id: int, roles: tuple[str, ...]) -> tuple[int, ...]:
    """Active users who hold one of ``roles`` at the site and have an e-mail address, by user id (one query)."""
    from participants.models import StaffMembership

    return tuple(
        StaffMembership.objects.filter(site_id=site_id, role__in=roles, user__is_active=True)
        .exclude(user__email="")
        .order_by("user_id")
        .values_list("user_id", flat=True)
        .distinct()
    )
