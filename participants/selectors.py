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


# --- reads for scheduling ---

from typing import TYPE_CHECKING  # noqa: E402 - this block keeps its own imports (appended by scheduling)

if TYPE_CHECKING:
    from collections.abc import Collection

    from django.contrib.auth.models import User

    from participants.access import Actor


def arm_code_of(participant: Participant) -> str | None:
    """The code of the arm the participant is allocated to, or None before randomization. Scheduling plans visits
    from it and never shows it."""
    from participants.models import AllocationSlot

    code: str | None = (
        AllocationSlot.objects.filter(participant=participant).values_list("arm__code", flat=True).first()
    )
    return code


def site_visible(user: Actor, code: str) -> Site | None:
    """The site with ``code`` if the user may see it; None when it does not exist or lies outside the user's sites."""
    return Site.objects.filter(id__in=site_ids_for(user), code=code).first()


def participant_locked(participant: Participant) -> Participant:
    """The participant's row read again and locked until the transaction ends, for writers that number things per
    participant (two requests must not both take the same number)."""
    return Participant.objects.select_for_update().select_related("site", "study").get(pk=participant.pk)


def active_staff_at_site(site: Site, usernames: Collection[str], *, role: str | None = None) -> dict[str, User]:
    """The active users among ``usernames`` who hold a role at the site (``role`` when given), by username."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(username__in=list(usernames), memberships__site=site, is_active=True)
    if role is not None:
        users = users.filter(memberships__role=role)
    return {user.username: user for user in users.distinct()}
