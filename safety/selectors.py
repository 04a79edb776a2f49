"""Reads of safety data, scoped to the user's sites and to blinding.

An independent rater at a site sees no adverse event of a participant whose study hides safety data from raters
(``Study.hides_safety_from_raters``): such an event is a 404 and is absent from every list, as if it did not exist.
No read here touches the allocation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from assessments import selectors as assessment_selectors
from participants.access import Actor, rater_site_ids, site_ids_for
from participants.models import Participant
from safety.aesi import AesiList, aesi_list_for
from safety.dosing_grid import GridRow, grid, missing_timepoints
from safety.models import (
    AdverseEvent,
    AdverseEventFollowUp,
    AdverseEventReview,
    ConcomitantMedication,
    DosingSession,
    MedicationOverride,
    VitalSign,
)
from safety.washout import blocks
from scheduling import selectors as scheduling_selectors
from scheduling.protocol import DosingDeclaration


def hidden_from_raters(user: Actor, *, via: str = "participant") -> Q | None:
    """The rows this user may not see for blinding, as a filter on rows that reach the participant through ``via``
    (``"participant"`` for a row with a participant foreign key, ``"visit__participant"`` and so on); None when
    there are none. Every safety record (adverse events, dosing sessions, vital signs, medications, guesses) uses it:
    an independent rater at a site sees none of them for a participant whose study hides safety data from raters."""
    rater_sites = rater_site_ids(user)
    if not rater_sites:
        return None
    study = f"{via}__study__safety_hidden_from_raters"
    hides = Q(**{study: True}) | Q(**{f"{study}__isnull": True, f"{via}__study__blinded": True})
    return Q(**{f"{via}__site_id__in": sorted(rater_sites)}) & hides


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


def medications_for(user: Actor) -> QuerySet[ConcomitantMedication]:
    """Every concomitant medication the user may see (site scope, and hidden from raters as adverse events are), with
    the participant and site a list row shows joined."""
    qs = ConcomitantMedication.objects.filter(participant__site_id__in=sorted(site_ids_for(user)))
    hidden = hidden_from_raters(user)
    if hidden is not None:
        qs = qs.exclude(hidden)
    return qs.select_related("participant__site", "participant__study", "recorded_by")


def medication_get(user: Actor, medication_id: int) -> ConcomitantMedication:
    """One medication, or Http404 if it does not exist, lies outside the user's sites or is hidden by blinding."""
    return get_object_or_404(medications_for(user), pk=medication_id)


def medications_of(user: Actor, participant_pk: int) -> QuerySet[ConcomitantMedication]:
    """A participant's medications the user may see, ongoing ones first, then by start date (latest first)."""
    return medications_for(user).filter(participant_id=participant_pk).order_by("-start_date", "-id")


def medication_overrides_for(user: Actor) -> QuerySet[MedicationOverride]:
    """Every investigator override of the medication check the user may see (scoped and blinded as medications)."""
    qs = MedicationOverride.objects.filter(participant__site_id__in=sorted(site_ids_for(user)))
    hidden = hidden_from_raters(user)
    if hidden is not None:
        qs = qs.exclude(hidden)
    return qs.select_related("participant__site", "participant__study", "visit", "recorded_by")


def medication_override_get(user: Actor, override_id: int) -> MedicationOverride:
    return get_object_or_404(medication_overrides_for(user), pk=override_id)


def prohibited_washouts(participant: Participant) -> dict[str, int]:
    """Medication class -> washout days, for the classes the participant's protocol prohibits before dosing."""
    return {m.medication_class: m.washout_days for m in scheduling_selectors.prohibited_medications_of(participant)}


def blocking_medications(participant: Participant, day: dt.date) -> list[tuple[ConcomitantMedication, int]]:
    """The participant's medications of a prohibited class taken on ``day`` or still washing out by it, each with its
    washout in days (not scoped: the booking check asks on behalf of whoever books). Two queries at most."""
    washouts = prohibited_washouts(participant)
    if not washouts:
        return []
    candidates = ConcomitantMedication.objects.filter(
        participant_id=participant.pk, medication_class__in=sorted(washouts), start_date__lte=day
    ).order_by("start_date", "id")
    return [(m, washouts[m.medication_class]) for m in candidates if blocks(m, washouts[m.medication_class], day)]


def latest_medication_override(visit_id: int) -> MedicationOverride | None:
    """The latest investigator override recorded for a visit, with who recorded it."""
    return (
        MedicationOverride.objects.filter(visit_id=visit_id)
        .select_related("recorded_by")
        .order_by("-recorded_at", "-id")
        .first()
    )


# --- reads for exports ---


def medications_at_sites(
    site_ids: Collection[int], study_ids: Collection[int] | None = None
) -> QuerySet[ConcomitantMedication]:
    """Concomitant medications of participants at these sites (and of these studies, if given); unordered, nothing
    joined. The export decides who may export; this only scopes."""
    qs = ConcomitantMedication.objects.filter(participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(participant__study_id__in=study_ids)
    return qs


# --- dosing sessions ------------------------------------------------------------------------------------------------


def dosing_sessions_for(user: Actor) -> QuerySet[DosingSession]:
    """Every dosing session the user may see (their sites; none a blinded rater may not), with what a list row shows
    joined and the vital-sign count annotated: a page costs the same whatever its length."""
    qs = DosingSession.objects.filter(participant__site_id__in=sorted(site_ids_for(user)))
    hidden = hidden_from_raters(user)
    if hidden is not None:
        qs = qs.exclude(hidden)
    return qs.select_related("participant__site", "participant__study", "visit").annotate(
        vital_sign_count=Count("vital_signs", distinct=True)
    )


def dosing_session_get(user: Actor, session_id: int) -> DosingSession:
    """One session with its vital signs and who was present, or Http404 when it does not exist, lies outside the
    user's sites or is hidden from them by blinding (the three look the same)."""
    qs = dosing_sessions_for(user).prefetch_related(
        Prefetch("vital_signs", queryset=VitalSign.objects.select_related("recorded_by").order_by("measured_at", "id")),
        "present_staff",
    )
    return get_object_or_404(
        qs.select_related("recorded_by", "closed_by", "visit__protocol_version", "visit__study"), pk=session_id
    )


def vital_sign_get(user: Actor, vital_sign_id: int) -> VitalSign:
    """One vital-signs row, scoped and blinded as its session is (Http404 otherwise)."""
    qs = VitalSign.objects.filter(session__participant__site_id__in=sorted(site_ids_for(user)))
    hidden = hidden_from_raters(user, via="session__participant")
    if hidden is not None:
        qs = qs.exclude(hidden)
    return get_object_or_404(qs.select_related("session"), pk=vital_sign_id)


@dataclass(frozen=True)
class DosingView:
    """What a dosing session's detail shows: its protocol's declarations, the grid by timepoint, the declared
    timepoints still missing, and the alerts its vital signs raised."""

    session: DosingSession
    declaration: DosingDeclaration | None
    grid: list[GridRow]
    missing: tuple[str, ...]
    alerts: list[Any]


def dosing_view(session: DosingSession) -> DosingView:
    """The detail of a session fetched with ``dosing_session_get`` (its vital signs prefetched): one more query,
    the alerts."""
    declaration = scheduling_selectors.visit_dosing_declaration(session.visit)
    vitals = list(session.vital_signs.all())
    alerts = list(assessment_selectors.safety_alerts_raised_by("vital_sign", [v.pk for v in vitals])) if vitals else []
    return DosingView(
        session=session,
        declaration=declaration,
        grid=grid(declaration, vitals),
        missing=missing_timepoints(declaration, (v.timepoint_code for v in vitals)),
        alerts=alerts,
    )


# --- reads for exports ---


def dosing_sessions_at_sites(
    site_ids: Collection[int], study_ids: Collection[int] | None = None, *, with_counts: bool = False
) -> QuerySet[DosingSession]:
    """Dosing sessions of participants at these sites (and of these studies, if given); unordered, nothing joined.
    ``with_counts``: the present staff and vital signs counted per row (``present_staff_count``,
    ``vital_sign_count``) as subqueries, so the rows stay one query."""
    qs = DosingSession.objects.filter(participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(participant__study_id__in=study_ids)
    if with_counts:
        staff = DosingSession.present_staff.through.objects.filter(dosingsession_id=OuterRef("pk"))
        vitals = VitalSign.objects.filter(session_id=OuterRef("pk"))
        qs = qs.annotate(
            present_staff_count=Coalesce(
                Subquery(staff.order_by().values("dosingsession_id").annotate(n=Count("id")).values("n")), 0
            ),
            vital_sign_count=Coalesce(
                Subquery(vitals.order_by().values("session_id").annotate(n=Count("id")).values("n")), 0
            ),
        )
    return qs


def vital_signs_at_sites(site_ids: Collection[int], study_ids: Collection[int] | None = None) -> QuerySet[VitalSign]:
    """Vital signs of participants at these sites (and of these studies, if given); unordered, nothing joined."""
    qs = VitalSign.objects.filter(session__participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(session__participant__study_id__in=study_ids)
    return qs
