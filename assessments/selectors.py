"""Assessment reads scoped by the acting user's sites. Nothing here joins the allocation (raters are blinded)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from assessments.models import Administration, Answer, Response, SafetyAlert, Score
from participants.access import site_ids_for


def responses_for(user) -> QuerySet[Response]:
    return (
        Response.objects.filter(participant__site_id__in=site_ids_for(user))
        .select_related("participant__site", "visit")
        .prefetch_related(
            Prefetch("scores", queryset=Score.objects.order_by("kind", "id")),
            Prefetch("answers", queryset=Answer.objects.order_by("id")),
        )
    )


def response_get(user, response_id: int) -> Response:
    return get_object_or_404(responses_for(user), pk=response_id)


def administrations_of_visit(visit) -> QuerySet[Administration]:
    return Administration.objects.filter(visit=visit).select_related("response").order_by("order", "id")


def administration_get(user, administration_id: int) -> Administration:
    qs = Administration.objects.filter(participant__site_id__in=site_ids_for(user)).select_related("participant__site")
    return get_object_or_404(qs, pk=administration_id)


def safety_alerts_for(user) -> QuerySet[SafetyAlert]:
    return SafetyAlert.objects.filter(participant__site_id__in=site_ids_for(user)).select_related(
        "participant__site", "response", "acknowledged_by"
    )


def safety_alert_get(user, alert_id: int) -> SafetyAlert:
    return get_object_or_404(safety_alerts_for(user), pk=alert_id)


# --- reads for exports ---

# Imported here, not at the top: this block is appended for exports and leaves the rest of the file as it is.
from collections.abc import Collection  # noqa: E402


def answers_at_sites(site_ids: Collection[int], study_ids: Collection[int] | None = None) -> QuerySet[Answer]:
    """Answers of participants at these sites (and of these studies, if given); unordered, nothing joined."""
    qs = Answer.objects.filter(response__participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(response__participant__study_id__in=study_ids)
    return qs


def scores_at_sites(site_ids: Collection[int], study_ids: Collection[int] | None = None) -> QuerySet[Score]:
    """Scores of participants at these sites (and of these studies, if given); unordered, nothing joined."""
    qs = Score.objects.filter(response__participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(response__participant__study_id__in=study_ids)
    return qs


def safety_alerts_at_sites(
    site_ids: Collection[int], study_ids: Collection[int] | None = None
) -> QuerySet[SafetyAlert]:
    """Safety alerts of participants at these sites (and of these studies, if given); unordered, nothing joined."""
    qs = SafetyAlert.objects.filter(participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(participant__study_id__in=study_ids)
    return qs


# --- reads for notifications ---
# The import sits in this appended block so that the block merges on its own.
import datetime as dt  # noqa: E402

_ADMINISTRATION_DONE = (Administration.Status.COMPLETED, Administration.Status.NOT_APPLICABLE)


def administrations_outstanding(participant_pk: int) -> QuerySet[Administration]:
    """A participant's administrations not done yet (neither completed nor not applicable), expired ones included:
    what the site is still waiting for."""
    return Administration.objects.filter(participant_id=participant_pk).exclude(status__in=_ADMINISTRATION_DONE)


def self_reports_open(participant_pk: int, *, now: dt.datetime) -> QuerySet[Administration]:
    """A participant's self-report administrations that can still be answered: not done, with a window that has not
    closed at ``now`` (it may not have opened yet). Whether one has expired comes from the clock, never from the
    stored status, which nothing refreshes on a read."""
    return administrations_outstanding(participant_pk).filter(
        respondent=Administration.Respondent.SELF, opens_at__isnull=False, closes_at__gte=now
    )


def outstanding_counts_by_visit(visit_pks: set[int]) -> dict[int, int]:
    """How many administrations of each visit are not done yet (one query); visits with none are absent."""
    from django.db.models import Count

    rows = (
        Administration.objects.filter(visit_id__in=visit_pks)
        .exclude(status__in=_ADMINISTRATION_DONE)
        .order_by()
        .values("visit_id")
        .annotate(n=Count("id"))
    )
    return {row["visit_id"]: row["n"] for row in rows}
