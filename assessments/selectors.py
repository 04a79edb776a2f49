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
