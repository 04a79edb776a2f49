"""Reads of safety data, scoped to the user's sites and to blinding.

An independent rater at a site sees no adverse event of a participant whose study hides safety data from raters
(``Study.hides_safety_from_raters``): such an event is a 404 and is absent from every list, as if it did not exist.
No read here touches the allocation.
"""

from __future__ import annotations

from collections.abc import Collection

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from participants.access import Actor, rater_site_ids, site_ids_for
from safety.aesi import AesiList, aesi_list_for
from safety.models import AdverseEvent, AdverseEventFollowUp, AdverseEventReview


def hidden_at_rater_sites(rater_sites: Collection[int], *, via: str = "participant") -> Q | None:
    """The rows hidden for blinding from someone who is an independent rater at ``rater_sites``, as a filter on rows
    that reach the participant through ``via``; None when there are none (no rater site)."""
    if not rater_sites:
        return None
    study = f"{via}__study__safety_hidden_from_raters"
    hides = Q(**{study: True}) | Q(**{f"{study}__isnull": True, f"{via}__study__blinded": True})
    return Q(**{f"{via}__site_id__in": sorted(rater_sites)}) & hides


def hidden_from_raters(user: Actor, *, via: str = "participant") -> Q | None:
    """The rows this user may not see for blinding, as a filter on rows that reach the participant through ``via``
    (``"participant"`` for a row with a participant foreign key, ``"visit__participant"`` and so on); None when
    there are none. Every safety record (adverse events, dosing sessions, vital signs, medications, guesses) uses it:
    an independent rater at a site sees none of them for a participant whose study hides safety data from raters."""
    return hidden_at_rater_sites(rater_site_ids(user), via=via)


def adverse_events_for(user: Actor) -> QuerySet[AdverseEvent]:
    """Every adverse event the user may see, with what a list row shows (participant, site, visit) joined. Counts of
    follow-ups and reviews come as annotations, so a page of events costs the same whatever its length."""
    qs = AdverseEvent.objects.filter(participant__site_id__in=sorted(site_ids_for(user)))
    hidden = hidden_from_raters(user)
    if hidden is not None:
        qs = qs.exclude(hidden)
    return qs.select_related("participant__site", "participant__study", "visit").annotate(
        follow_up_count=Count("follow_ups", distinct=True), review_count=Count("reviews", distinct=True)
    )


def adverse_event_get(user: Actor, event_id: int) -> AdverseEvent:
    """One event with its follow-ups and reviews, or Http404 if it does not exist, lies outside the user's sites or
    is hidden from them by blinding (the three look the same)."""
    qs = adverse_events_for(user).prefetch_related(
        Prefetch("follow_ups", queryset=AdverseEventFollowUp.objects.select_related("recorded_by")),
        Prefetch("reviews", queryset=AdverseEventReview.objects.select_related("reviewed_by")),
    )
    return get_object_or_404(qs.select_related("recorded_by"), pk=event_id)


def aesi_list_of_study(study_code: str) -> AesiList:
    return aesi_list_for(study_code)


# --- reads for exports ---


def _count_of(model: type[AdverseEventFollowUp] | type[AdverseEventReview]) -> Coalesce:
    counted = model.objects.filter(event=OuterRef("pk")).order_by().values("event").annotate(n=Count("id"))
    return Coalesce(Subquery(counted.values("n"), output_field=IntegerField()), Value(0))


def adverse_events_at_sites(
    site_ids: Collection[int], study_ids: Collection[int] | None = None, *, rater_sites: Collection[int] = ()
) -> QuerySet[AdverseEvent]:
    """Adverse events of participants at these sites (and of these studies, if given), less those hidden from a
    rater at ``rater_sites``; unordered. Each carries its follow-up and review counts and the latest review's
    causality as annotations (subqueries: one query for any number of rows)."""
    qs = AdverseEvent.objects.filter(participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(participant__study_id__in=study_ids)
    hidden = hidden_at_rater_sites(rater_sites)
    if hidden is not None:
        qs = qs.exclude(hidden)
    latest = AdverseEventReview.objects.filter(event=OuterRef("pk")).order_by("-reviewed_at", "-id")
    return qs.annotate(
        follow_up_count=_count_of(AdverseEventFollowUp),
        review_count=_count_of(AdverseEventReview),
        latest_causality_drug=Subquery(latest.values("causality_drug")[:1]),
        latest_causality_therapy=Subquery(latest.values("causality_therapy")[:1]),
    )
