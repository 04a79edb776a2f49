"""Scheduling reads, scoped by the acting user's sites. No read here joins the allocation: visit codes are identical
between blinded arms, so a visit list reveals nothing about the arm, and nothing here may add it."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from participants.access import site_ids_for
from participants.models import Participant
from scheduling.models import ProtocolDeviation, Room, Visit


def _with_display(qs: QuerySet[Visit]) -> QuerySet[Visit]:
    from django.contrib.auth import get_user_model

    # Three queries whatever the page size: visits (+ participant, site, room, version), then staff usernames.
    return qs.select_related("participant__site", "participant__study", "room", "protocol_version").prefetch_related(
        Prefetch("staff", queryset=get_user_model().objects.only("id", "username").order_by("username"))
    )


def visits_for(user) -> QuerySet[Visit]:
    return _with_display(Visit.objects.filter(participant__site_id__in=site_ids_for(user)))


def visit_get(user, visit_id: int) -> Visit:
    """One visit, or Http404 when it does not exist or lies outside the user's sites (the two look the same)."""
    return get_object_or_404(visits_for(user), pk=visit_id)


def visits_of(participant: Participant) -> QuerySet[Visit]:
    return _with_display(Visit.objects.filter(participant=participant)).order_by("target_date", "scheduled_start", "id")


def site_calendar_visits(site_id: int) -> QuerySet[Visit]:
    """The sessions that hold a slot at a site: scheduled and completed visits (a completed session stays on the
    calendar as a record of the time it used); planned, missed and cancelled ones hold no slot."""
    return _with_display(
        Visit.objects.filter(
            participant__site_id=site_id,
            status__in=[Visit.Status.SCHEDULED, Visit.Status.COMPLETED],
            scheduled_start__isnull=False,
        )
    ).order_by("scheduled_start", "id")


def staff_calendar_visits(user) -> QuerySet[Visit]:
    return _with_display(
        Visit.objects.filter(
            staff=user,
            participant__site_id__in=site_ids_for(user),
            status__in=[Visit.Status.SCHEDULED, Visit.Status.COMPLETED],
            scheduled_start__isnull=False,
        )
    ).order_by("scheduled_start", "id")


def deviations_for(user) -> QuerySet[ProtocolDeviation]:
    return ProtocolDeviation.objects.filter(participant__site_id__in=site_ids_for(user)).select_related(
        "participant__site", "visit", "recorded_by"
    )


def rooms_for(user) -> QuerySet[Room]:
    return Room.objects.filter(site_id__in=site_ids_for(user)).select_related("site")


# --- reads for exports ---

# Imported here, not at the top: this block is appended for exports and leaves the rest of the file as it is.
from collections.abc import Collection  # noqa: E402


def visits_at_sites(site_ids: Collection[int], study_ids: Collection[int] | None = None) -> QuerySet[Visit]:
    """Visits of participants at these sites (and of these studies, if given); unordered, nothing joined."""
    qs = Visit.objects.filter(participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(participant__study_id__in=study_ids)
    return qs


def deviations_at_sites(
    site_ids: Collection[int], study_ids: Collection[int] | None = None
) -> QuerySet[ProtocolDeviation]:
    """Protocol deviations of participants at these sites (and of these studies, if given); unordered."""
    qs = ProtocolDeviation.objects.filter(participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(participant__study_id__in=study_ids)
    return qs


# --- reads for notifications ---


def participant_visits(participant_pk: int) -> QuerySet[Visit]:
    """Every visit of one participant, whatever its status, in plan order. No user scoping: the reminder planner runs
    as the system."""
    return Visit.objects.filter(participant_id=participant_pk)


def visits_by_pk(visit_pks: set[int]) -> dict[int, Visit]:
    """The visits with these primary keys, by key (one query); missing ones are simply absent."""
    return Visit.objects.in_bulk(visit_pks)
