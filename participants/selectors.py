"""Reads scoped by the acting user's sites and blinding. Views never filter by hand."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from participants.access import Actor, is_superuser, site_ids_for
from participants.models import (
    AllocationSlot,
    ConsentDocument,
    ConsentRecord,
    EligibilityCriterion,
    Participant,
    Site,
    StaffMembership,
    Study,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def sites_for(user: Actor) -> QuerySet[Site]:
    return Site.objects.filter(id__in=site_ids_for(user)).order_by("code")


def studies_for(user: Actor) -> QuerySet[Study]:
    return Study.objects.filter(sites__in=site_ids_for(user)).distinct().prefetch_related("arms").order_by("code")


def participants_for(user: Actor) -> QuerySet[Participant]:
    """Participants at the user's sites. The allocation is not joined here: callers that may show it ask for it."""
    return Participant.objects.filter(site_id__in=site_ids_for(user)).select_related("study", "site")


def participant_get(user: Actor, participant_id: str) -> Participant:
    """One participant, or Http404 if it does not exist or lies outside the user's sites (the two look the same)."""
    return get_object_or_404(participants_for(user), participant_id=participant_id)


def site_get(user: Actor, code: str) -> Site:
    """One of the user's sites, or Http404."""
    return get_object_or_404(sites_for(user), code=code)


def site_of_user(user: Actor, code: str) -> Site | None:
    """One of the user's sites by code, or None."""
    return sites_for(user).filter(code=code).first()


def study_by_code(code: str) -> Study | None:
    return Study.objects.filter(code=code).first()


def study_get(code: str) -> Study:
    """A study by code, whoever asks, or Http404 (unblinding decides itself who may act on it)."""
    return get_object_or_404(Study, code=code)


def studies_by_code(codes: Iterable[str]) -> dict[str, Study]:
    return {study.code: study for study in Study.objects.filter(code__in=list(codes))}


def staff_member_at(site: Site, username: str) -> User | None:
    """A user holding a role at ``site``, by username."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username=username, memberships__site=site).distinct().first()


def user_by_username(username: str) -> User | None:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username=username).first()


def latest_consent(participant: Participant) -> ConsentRecord | None:
    return participant.consents.select_related("document").order_by("-id").first()


def latest_consent_versions(participant_ids: Iterable[int]) -> dict[int, str]:
    """The consent version each participant signed last (one query for a page of participants)."""
    versions: dict[int, str] = {}
    for pid, version in (
        ConsentRecord.objects.filter(participant_id__in=list(participant_ids))
        .order_by("id")
        .values_list("participant_id", "document__version")
    ):
        versions[pid] = version
    return versions


def arm_codes(participant_ids: Iterable[int]) -> dict[int, str]:
    """The arm of each randomized participant among ``participant_ids``: only for callers that may see it."""
    return dict(
        AllocationSlot.objects.filter(participant_id__in=list(participant_ids)).values_list(
            "participant_id", "arm__code"
        )
    )


# --- configuration (administrators) ----------------------------------------------------------------------------------


def configurable_studies(user: Actor) -> QuerySet[Study]:
    """Studies an administrator may open for configuration: every study for a superuser (a new study has no site
    yet), the studies of the user's sites otherwise (whether the user may change them is the service's question)."""
    if is_superuser(user):
        return Study.objects.order_by("code")
    return Study.objects.filter(sites__in=site_ids_for(user)).distinct().order_by("code")


def configurable_study_get(user: Actor, code: str) -> Study:
    return get_object_or_404(configurable_studies(user), code=code)


def configurable_site_get(user: Actor, code: str) -> Site:
    """Superusers see every site (site_ids_for already says so); others their own."""
    return get_object_or_404(sites_for(user), code=code)


def criteria_of(study: Study) -> QuerySet[EligibilityCriterion]:
    """Every criterion of the study, retired ones included, in the order they are asked."""
    return EligibilityCriterion.objects.filter(study=study).order_by("order", "code")


def criterion_get(study: Study, criterion_id: int) -> EligibilityCriterion:
    return get_object_or_404(criteria_of(study), pk=criterion_id)


def consent_documents_of(study: Study) -> QuerySet[ConsentDocument]:
    return ConsentDocument.objects.filter(study=study).select_related("published_by").order_by("published_at", "id")


def memberships_at(site: Site) -> QuerySet[StaffMembership]:
    return StaffMembership.objects.filter(site=site).select_related("user", "site").order_by("user__username", "role")


def membership_get(site: Site, membership_id: int) -> StaffMembership:
    return get_object_or_404(memberships_at(site), pk=membership_id)


def current_consent_document(study: Study) -> ConsentDocument | None:
    return study.consent_documents.order_by("-published_at", "-id").first()
