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
