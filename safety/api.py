"""Safety API (v1): adverse events. Thin views: parse, fetch with an access check, call one service, render.

Every role at a site reads its adverse events, except an independent rater where the study hides safety data from
raters (404, and absent from lists). Coordinators, investigators, administrators and therapists record, correct
and follow up (checked by the services); only an investigator at the event's site reviews."""

from __future__ import annotations

import re
from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from participants import selectors as participant_selectors
from participants.models import Participant
from safety import selectors, services
from safety.models import AdverseEvent
from safety.serializers import (
    AdverseEventCorrectInput,
    AdverseEventDetailOutput,
    AdverseEventInput,
    AdverseEventOutput,
    FollowUpInput,
    FollowUpOutput,
    ReviewInput,
    ReviewOutput,
    SummaryOutput,
)
from scheduling import selectors as scheduling_selectors
from scheduling.models import Visit
from trialsite.errors import ServiceError

STUDY_CODE = re.compile(r"[A-Za-z0-9_-]{1,40}")


def _visit(participant: Participant, visit_id: int | None) -> Visit | None:
    if visit_id is None:
        return None
    visit = scheduling_selectors.visit_of(participant, visit_id)
    if visit is None:
        raise ServiceError("unknown visit", field_errors={"visit": ["not a visit of this participant"]})
    return visit


# django-filter ships no type information, so its FilterSet is Any to the type checker.
class AdverseEventFilter(django_filters.FilterSet):
    site = django_filters.CharFilter(field_name="participant__site__code")
    participant = django_filters.CharFilter(field_name="participant__participant_id")
    study = django_filters.CharFilter(field_name="participant__study__code")
    serious = django_filters.BooleanFilter()
    aesi = django_filters.BooleanFilter(method="filter_aesi")
    min_grade = django_filters.NumberFilter(field_name="severity_grade", lookup_expr="gte")
    unreviewed = django_filters.BooleanFilter(field_name="reviewed_at", lookup_expr="isnull")

    class Meta:
        model = AdverseEvent
        fields = ["site", "participant", "study", "serious", "aesi", "min_grade", "unreviewed"]

    def filter_aesi(self, qs: QuerySet[AdverseEvent], name: str, value: bool | None) -> QuerySet[AdverseEvent]:
        if value is None:
            return qs
        empty = Q(aesi_categories=[])
        return qs.exclude(empty) if value else qs.filter(empty)


class AdverseEventListCreate(ListAPIView[AdverseEvent]):
    serializer_class = AdverseEventOutput
    filterset_class = AdverseEventFilter

    def get_queryset(self) -> QuerySet[AdverseEvent]:
        return selectors.adverse_events_for(self.request.user).order_by("-onset_at", "-id")

    @extend_schema(request=AdverseEventInput, responses={201: AdverseEventDetailOutput})
    def post(self, request: Request) -> Response:
        payload = AdverseEventInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values: dict[str, Any] = dict(payload.validated_data)
        participant = participant_selectors.participant_get(request.user, values.pop("participant_id"))
        visit = _visit(participant, values.pop("visit", None))
        event = services.adverse_event_record(
            participant=participant,
            visit=visit,
            seriousness=frozenset(values.pop("seriousness")),
            by=request.user,
            **values,
        )
        row = selectors.adverse_event_get(request.user, event.pk)
        return Response(AdverseEventDetailOutput(row).data, status=status.HTTP_201_CREATED)


class AdverseEventDetail(APIView):
    @extend_schema(responses=AdverseEventDetailOutput)
    def get(self, request: Request, adverse_event_id: int) -> Response:
        return Response(AdverseEventDetailOutput(selectors.adverse_event_get(request.user, adverse_event_id)).data)


class AdverseEventCorrect(APIView):
    @extend_schema(request=AdverseEventCorrectInput, responses={200: AdverseEventDetailOutput})
    def post(self, request: Request, adverse_event_id: int) -> Response:
        event = selectors.adverse_event_get(request.user, adverse_event_id)
        payload = AdverseEventCorrectInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values: dict[str, Any] = dict(payload.validated_data)
        reason = values.pop("reason")
        if "visit" in values:
            values["visit"] = _visit(event.participant, values["visit"])
        if "seriousness" in values:
            values["seriousness"] = frozenset(values["seriousness"])
        services.adverse_event_correct(event=event, reason=reason, by=request.user, **values)
        return Response(AdverseEventDetailOutput(selectors.adverse_event_get(request.user, adverse_event_id)).data)


class AdverseEventFollowUpCreate(APIView):
    @extend_schema(request=FollowUpInput, responses={201: FollowUpOutput})
    def post(self, request: Request, adverse_event_id: int) -> Response:
        event = selectors.adverse_event_get(request.user, adverse_event_id)
        payload = FollowUpInput(data=request.data)
        payload.is_valid(raise_exception=True)
        entry = services.adverse_event_follow_up(event=event, by=request.user, **payload.validated_data)
        return Response(FollowUpOutput(entry).data, status=status.HTTP_201_CREATED)


class AdverseEventReviewCreate(APIView):
    @extend_schema(request=ReviewInput, responses={201: ReviewOutput})
    def post(self, request: Request, adverse_event_id: int) -> Response:
        event = selectors.adverse_event_get(request.user, adverse_event_id)
        payload = ReviewInput(data=request.data)
        payload.is_valid(raise_exception=True)
        review = services.adverse_event_review(event=event, by=request.user, **payload.validated_data)
        return Response(ReviewOutput(review).data, status=status.HTTP_201_CREATED)


class AdverseEventSummaryView(APIView):
    """The study's adverse events counted per AESI category: pooled, and per arm only for a user who may see the
    allocation at every one of their sites in the study (the body of anyone else holds no arm)."""

    @extend_schema(
        parameters=[OpenApiParameter("study", str, description="study code (default: the first of your sites')")],
        responses=SummaryOutput,
    )
    def get(self, request: Request) -> Response:
        code = str(request.query_params.get("study") or "").strip()
        if code and not STUDY_CODE.fullmatch(code):
            raise ServiceError("not a study code", field_errors={"study": ["not a study code"]})
        studies = participant_selectors.studies_for(request.user)
        # Without ?study=, the first study of the user's sites (by code), as the dashboard's summary page does.
        study = get_object_or_404(studies, code=code) if code else studies.first()
        if study is None:
            raise Http404("no study at your sites")
        return Response(SummaryOutput(selectors.adverse_event_summary(request.user, study=study)).data)
