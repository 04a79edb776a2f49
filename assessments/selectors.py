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
