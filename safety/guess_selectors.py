"""Who may record and who may read treatment guesses, and the blinding report.

- Recording: the participant's own guess is entered by staff on their behalf (a coordinator, a therapist or an
  investigator), the lead therapist's by a therapist, the independent rater's by a rater (``may_record_guess``).
- Reading: an independent rater reads no guess at a site where they rate: not the participant's, not the
  therapist's, not their own once entered (a rater records and gets a receipt back; what someone else guessed, or
  even how many guessed what, could tell them the arm). So at a rater's sites guesses are 404 and absent from lists
  and from the report, whatever else the rater holds there; the study's ``hides_safety_from_raters`` is applied on
  top, as for every safety record.
- The report: Bang's and James' indices per arm and per respondent only for a role that may see the allocation at
  every site it covers (``participants.access.can_see_allocation``); any other role gets the pooled distribution,
  the count of each answer over all arms together, which names no arm's results.

Nothing here writes. Whether a guess was right is never stored: it is worked out here, for unblinded readers only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from participants import selectors as participant_selectors
from participants.access import Actor, can_see_allocation, has_role, rater_site_ids, site_ids_for
from participants.models import Participant, Study
from safety.blinding_index import DONT_KNOW, arm_counts, bang_index, james_index, pooled_distribution
from safety.models import TreatmentGuess
from safety.selectors import hidden_from_raters
from scheduling import selectors as scheduling_selectors
from scheduling.models import Visit
from trialsite.roles import Role

R = TreatmentGuess.Respondent
# Whose guess each role may enter. The participant answers for themselves; staff type it in.
RECORDERS: dict[str, frozenset[str]] = {
    R.PARTICIPANT: frozenset({Role.COORDINATOR, Role.THERAPIST, Role.INVESTIGATOR}),
    R.LEAD_THERAPIST: frozenset({Role.THERAPIST}),
    R.INDEPENDENT_RATER: frozenset({Role.RATER}),
}
CONFIDENCE_SCALE = "0-100 (0: a pure guess, 50: fairly sure, 100: certain)"


def may_record_guess(user: Actor, *, site_id: int, respondent: str) -> bool:
    """May ``user`` enter (or correct) the guess of ``respondent`` for a participant of this site?"""
    roles = RECORDERS.get(respondent)
    return roles is not None and has_role(user, site_id, roles)


def respondents_recordable(user: Actor, site_id: int) -> list[str]:
    return [respondent for respondent in R.values if may_record_guess(user, site_id=site_id, respondent=respondent)]


def reads_no_guess(user: Actor) -> Q | None:
    """The guesses this user may not read, as a filter on guesses; None when there are none."""
    hidden = hidden_from_raters(user)
    rater_sites = rater_site_ids(user)
    if rater_sites:
        at_rater_sites = Q(participant__site_id__in=sorted(rater_sites))
        hidden = at_rater_sites if hidden is None else hidden | at_rater_sites
    return hidden


def may_read_guesses(user: Actor, participant: Participant) -> bool:
    return participant.site_id in site_ids_for(user) and participant.site_id not in rater_site_ids(user)


def guesses_for(user: Actor) -> QuerySet[TreatmentGuess]:
    """Every guess the user may read, with what a row shows joined."""
    qs = TreatmentGuess.objects.filter(participant__site_id__in=sorted(site_ids_for(user)))
    hidden = reads_no_guess(user)
    if hidden is not None:
        qs = qs.exclude(hidden)
    return qs.select_related("participant__site", "participant__study", "visit", "recorded_by")


def guess_get(user: Actor, guess_id: int) -> TreatmentGuess:
    """One guess, or Http404 if it does not exist, lies outside the user's sites or is not for them to read."""
    return get_object_or_404(guesses_for(user), pk=guess_id)


def guess_for_correction(user: Actor, guess_id: int) -> TreatmentGuess:
    """A guess the user may correct: one they may read, or (for a rater) an independent rater's guess at their
    site, which the rater corrects without reading it back. Http404 otherwise (as if it did not exist)."""
    qs = TreatmentGuess.objects.filter(participant__site_id__in=sorted(site_ids_for(user))).select_related(
        "participant__site", "participant__study", "visit", "recorded_by"
    )
    readable = reads_no_guess(user)
    rater_own = Q(
        participant__site_id__in=sorted(rater_site_ids(user)), respondent=TreatmentGuess.Respondent.INDEPENDENT_RATER
    )
    if readable is not None:
        qs = qs.filter(~readable | rater_own)
    return get_object_or_404(qs, pk=guess_id)


def endpoint_codes(study: Study) -> frozenset[str]:
    """The endpoint visit codes of the study's primary comparison, over every arm (the codes alone name no one's
    arm). A guess is asked after each dosing session (a visit of kind "dosing") and at these visits."""
    comparison = scheduling_selectors.primary_comparison_visits(study.protocol_code)
    return frozenset(pair.endpoint for pair in comparison.values())


def is_guess_visit(visit: Visit, study: Study) -> bool:
    return visit.kind == "dosing" or visit.code in endpoint_codes(study)


def arm_level_visible(user: Actor, study: Study, site_ids: Iterable[int]) -> bool:
    """Indices per arm only where the user may see the allocation at every site the report covers."""
    site_ids = list(site_ids)
    return bool(site_ids) and all(can_see_allocation(user, site_id=sid, study=study) for sid in site_ids)


def _timepoint_order(row: Mapping[str, Any]) -> tuple[bool, int, str]:
    number = row["visit__dosing_number"]
    return (number is None, number or 0, row["visit__code"])


def blinding_report(user: Actor, study: Study) -> dict[str, Any]:
    """The blinding report of one study over the user's sites: per timepoint (visit code) and respondent, the
    pooled count of each answer, and for a user who may see the allocation at every one of those sites, the counts
    per arm with Bang's index per arm and James' index (two arms). A constant number of queries."""
    study_sites = set(participant_selectors.sites_for(user).filter(studies=study).values_list("id", flat=True))
    site_ids = sorted(study_sites - rater_site_ids(user))
    arms = participant_selectors.study_arm_codes(study.pk)
    qs = TreatmentGuess.objects.filter(participant__study_id=study.pk, participant__site_id__in=site_ids)
    hidden = reads_no_guess(user)
    if hidden is not None:
        qs = qs.exclude(hidden)
    rows = list(
        qs.values("participant_id", "visit__code", "visit__dosing_number", "respondent", "guess").order_by(
            "visit__code", "respondent", "participant_id"
        )
    )
    arm_level = arm_level_visible(user, study, site_ids)
    allocation = participant_selectors.arm_codes({row["participant_id"] for row in rows}) if arm_level else {}
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    order: dict[str, tuple[bool, int, str]] = {}
    for row in rows:
        grouped.setdefault((row["visit__code"], row["respondent"]), []).append(row)
        order[row["visit__code"]] = _timepoint_order(row)
    timepoints = []
    for code in sorted(order, key=order.__getitem__):
        respondents = []
        for respondent in R.values:
            entries = grouped.get((code, respondent))
            if not entries:
                continue
            table: dict[str, dict[str, int]] = {}
            for entry in entries:
                arm = allocation.get(entry["participant_id"], "") if arm_level else ""
                cell = table.setdefault(arm, {})
                cell[entry["guess"]] = cell.get(entry["guess"], 0) + 1
            pooled = pooled_distribution(table)
            item: dict[str, Any] = {
                "respondent": respondent,
                "n": len(entries),
                "pooled": {option: pooled.get(option, 0) for option in [*arms, DONT_KNOW]},
            }
            if arm_level:
                by_arm = {}
                for arm in arms:
                    counts = arm_counts(table, arm)
                    bang = bang_index(counts)
                    by_arm[arm] = {
                        "n": counts.total,
                        "correct": counts.correct,
                        "incorrect": counts.incorrect,
                        "dont_know": counts.dont_know,
                        "bang": bang.as_dict() if bang else None,
                    }
                james = james_index(table, arms)
                item["by_arm"] = by_arm
                item["james"] = james.as_dict() if james else None
            respondents.append(item)
        timepoints.append({"visit_code": code, "respondents": respondents})
    return {
        "study": study.code,
        "options": [*arms, DONT_KNOW],
        "confidence_scale": CONFIDENCE_SCALE,
        "arm_level": arm_level,
        "timepoints": timepoints,
    }


def guesses_at_sites(site_ids: Iterable[int], study_ids: Iterable[int] | None = None) -> QuerySet[TreatmentGuess]:
    """Guesses of participants at these sites (and of these studies, if given), for exports: unordered, nothing
    joined, no arm (the export adds it only where ``participants.access.arm_visible_in_export`` allows)."""
    qs = TreatmentGuess.objects.filter(participant__site_id__in=list(site_ids))
    if study_ids is not None:
        qs = qs.filter(participant__study_id__in=list(study_ids))
    return qs
