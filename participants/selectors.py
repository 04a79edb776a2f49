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


# --- reads for assessments ---


def participant_with_contact(participant_pk: int) -> Participant:
    """One participant with site and contact details loaded: status, time zone and language in one query."""
    return Participant.objects.select_related("site", "contact").get(pk=participant_pk)


def staff_emails_at(site_id: int, roles: set[str] | frozenset[str]) -> list[str]:
    """The e-mail addresses of active staff holding one of ``roles`` at the site, sorted, each once."""
    from participants.models import StaffMembership

    emails = (
        StaffMembership.objects.filter(site_id=site_id, role__in=sorted(roles), user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
        .distinct()
    )
    return sorted(set(emails))


def sites_with_public_contact() -> QuerySet[Site]:
    """Sites that publish an e-mail address or a phone number for participants, by name."""
    return Site.objects.exclude(contact_email="", contact_phone="").order_by("name")
