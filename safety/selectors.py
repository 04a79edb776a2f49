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

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import get_object_or_404

from assessments import selectors as assessment_selectors
from participants import selectors as participant_selectors
from participants.access import Actor, can_see_allocation, rater_site_ids, safety_hidden_from, site_ids_for
from participants.models import Participant, Study
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


# --- the summary by arm and AESI category ---

#: The category row every summary starts with: any adverse event, of special interest or not.
ANY_EVENT = "any"


@dataclass(frozen=True)
class SummaryCounts:
    """Counts of one cell: participants with at least one event, events, events of grade 3 or more, serious events."""

    participants: int
    events: int
    events_grade_3_or_more: int
    serious_events: int


@dataclass(frozen=True)
class SummaryRow:
    category: str  # ANY_EVENT or an AESI category code
    label: str
    counts: SummaryCounts


@dataclass(frozen=True)
class ArmSummary:
    code: str  # "" for participants with events but no allocation (not randomized)
    label: str
    randomized: int  # participants randomized to the arm at the sites counted (the denominator)
    rows: tuple[SummaryRow, ...]


@dataclass(frozen=True)
class AdverseEventSummary:
    """The study's adverse events as the user may see them: ``pooled`` always; ``arms`` only for a user who may see
    the allocation at every one of their sites in the study (None otherwise, so a template cannot show it)."""

    study: Study
    site_ids: tuple[int, ...]
    pooled: tuple[SummaryRow, ...]
    arms: tuple[ArmSummary, ...] | None

    @property
    def by_arm(self) -> bool:
        return self.arms is not None


class _Tally:
    def __init__(self) -> None:
        self.participants: set[int] = set()
        self.events = self.severe = self.serious = 0

    def add(self, participant: int, grade: int, serious: bool) -> None:
        self.participants.add(participant)
        self.events += 1
        self.severe += grade >= 3
        self.serious += serious

    def counts(self) -> SummaryCounts:
        return SummaryCounts(len(self.participants), self.events, self.severe, self.serious)


def summary_sites(user: Actor, study: Study) -> list[int]:
    """The user's sites of the study whose adverse events they may see (a rater's sites drop out where the study
    hides safety data from raters)."""
    sites = set(participant_selectors.matrix_sites(user, study).values_list("id", flat=True))
    return sorted(sid for sid in sites if not safety_hidden_from(user, site_id=sid, study=study))


def adverse_event_summary(user: Actor, *, study: Study) -> AdverseEventSummary:
    """Participants affected, events, events of grade 3 or more and serious events of the study, for any event and
    per AESI category of the study's list, pooled, and per arm for a user who may see the allocation at every site
    counted (one blinded site among them is enough to pool: totals add sites up). Http404 when the user sees no
    adverse event of the study at all. One query, whatever the number of events: counted in Python from a stream."""
    site_ids = summary_sites(user, study)
    if not site_ids:
        raise Http404("no such study")
    by_arm = all(can_see_allocation(user, site_id=sid, study=study) for sid in site_ids)
    aesi = aesi_list_for(study.code)
    labels = {ANY_EVENT: "Any adverse event"} | {c.code: c.label for c in aesi.categories}
    fields = ["participant_id", "severity_grade", "serious", "aesi_categories"]
    if by_arm:  # the allocation is joined only for a user who may see it
        fields.append("participant__allocation__arm__code")
    events = AdverseEvent.objects.filter(participant__study=study, participant__site_id__in=site_ids).order_by()
    pooled: dict[str, _Tally] = {code: _Tally() for code in labels}
    per_arm: dict[str, dict[str, _Tally]] = {}
    for row in events.values_list(*fields).iterator(chunk_size=2000):
        participant, grade, serious, categories = row[:4]
        tallies = [pooled]
        if by_arm:
            tallies.append(per_arm.setdefault(row[4] or "", {code: _Tally() for code in labels}))
        for tally in tallies:
            for code in (ANY_EVENT, *categories):
                if code in tally:  # a category since removed from the study's list is counted under "any" only
                    tally[code].add(participant, grade, serious)

    def rows(tally: dict[str, _Tally]) -> tuple[SummaryRow, ...]:
        return tuple(SummaryRow(code, label, tally[code].counts()) for code, label in labels.items())

    arms = None
    if by_arm:
        arm_labels = {arm.code: arm.label for arm in study.arms.all()}
        randomized: dict[str, int] = {}
        for by_site in participant_selectors.overview_randomized_by_arm(user, study=study, site_ids=site_ids).values():
            for code, n in by_site.items():
                randomized[code] = randomized.get(code, 0) + n
        order = list(arm_labels) + sorted(set(per_arm) - set(arm_labels))
        empty = {code: _Tally() for code in labels}
        arms = tuple(
            ArmSummary(
                code, arm_labels.get(code, "Not randomized"), randomized.get(code, 0), rows(per_arm.get(code, empty))
            )
            for code in order
            if code in arm_labels or code in per_arm
        )
    return AdverseEventSummary(study=study, site_ids=tuple(site_ids), pooled=rows(pooled), arms=arms)


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
                Subquery(staff.order_by().values("dosingsession_id").annotate(n=Count("id")).values("n")),  # type: ignore[misc]
                0,
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
