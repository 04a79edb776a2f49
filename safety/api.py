"""Safety API (v1): adverse events. Thin views: parse, fetch with an access check, call one service, render.

Every role at a site reads its adverse events, except an independent rater where the study hides safety data from
raters (404, and absent from lists). Coordinators, investigators, administrators and therapists record, correct
and follow up (checked by the services); only an investigator at the event's site reviews."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from participants import selectors as participant_selectors
from participants.models import Participant
from safety import guess_selectors, selectors, services
from safety.models import AdverseEvent, TreatmentGuess
from safety.serializers import (
    AdverseEventCorrectInput,
    AdverseEventDetailOutput,
    AdverseEventInput,
    AdverseEventOutput,
    FollowUpInput,
    FollowUpOutput,
    GuessCorrectInput,
    GuessInput,
    GuessOutput,
    GuessReceiptOutput,
    ReviewInput,
    ReviewOutput,
)
from scheduling import selectors as scheduling_selectors
from scheduling.models import Visit
from trialsite.errors import ServiceError


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


# --- treatment guesses (blinding assessment) ---


class GuessFilter(django_filters.FilterSet):
    site = django_filters.CharFilter(field_name="participant__site__code")
    participant = django_filters.CharFilter(field_name="participant__participant_id")
    study = django_filters.CharFilter(field_name="participant__study__code")
    respondent = django_filters.ChoiceFilter(choices=TreatmentGuess.Respondent.choices)
    visit_code = django_filters.CharFilter(field_name="visit__code")

    class Meta:
        model = TreatmentGuess
        fields = ["site", "participant", "study", "respondent", "visit_code"]


def _guess_body(request: Request, entry: TreatmentGuess) -> dict[str, Any]:
    """The guess read back through the readers' selector, or a receipt for a user who may not read it back."""
    if guess_selectors.may_read_guesses(request.user, entry.participant):
        return dict(GuessOutput(guess_selectors.guess_get(request.user, entry.pk)).data)
    return dict(GuessReceiptOutput(entry).data)


class TreatmentGuessListCreate(ListAPIView[TreatmentGuess]):
    """Guesses of the participants' arms: read by staff at the participants' sites except independent raters, who
    record theirs and get a receipt back."""

    serializer_class = GuessOutput
    filterset_class = GuessFilter

    def get_queryset(self) -> QuerySet[TreatmentGuess]:
        return guess_selectors.guesses_for(self.request.user).order_by("-recorded_at", "-id")

    @extend_schema(request=GuessInput, responses={201: GuessOutput})
    def post(self, request: Request) -> Response:
        payload = GuessInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values: dict[str, Any] = dict(payload.validated_data)
        participant = participant_selectors.participant_get(request.user, values.pop("participant_id"))
        visit = scheduling_selectors.visit_of(participant, values.pop("visit"))
        if visit is None:
            raise ServiceError("unknown visit", field_errors={"visit": ["not a visit of this participant"]})
        entry = services.guess_record(participant=participant, visit=visit, by=request.user, **values)
        return Response(_guess_body(request, entry), status=status.HTTP_201_CREATED)


class TreatmentGuessDetail(APIView):
    @extend_schema(responses=GuessOutput)
    def get(self, request: Request, treatment_guess_id: int) -> Response:
        return Response(GuessOutput(guess_selectors.guess_get(request.user, treatment_guess_id)).data)


class TreatmentGuessCorrect(APIView):
    @extend_schema(request=GuessCorrectInput, responses={200: GuessOutput})
    def post(self, request: Request, treatment_guess_id: int) -> Response:
        entry = guess_selectors.guess_for_correction(request.user, treatment_guess_id)
        payload = GuessCorrectInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values: dict[str, Any] = dict(payload.validated_data)
        reason = values.pop("reason")
        entry = services.guess_correct(treatment_guess=entry, reason=reason, by=request.user, **values)
        return Response(_guess_body(request, entry))


class BlindingIndexReport(APIView):
    """The study's blinding report over the user's sites: indices per arm and respondent for a role that may see
    the allocation, the pooled distribution of answers for any other (``safety.guess_selectors.blinding_report``)."""

    @extend_schema(responses=dict)
    def get(self, request: Request, study_code: str) -> Response:
        study = get_object_or_404(participant_selectors.studies_for(request.user), code=study_code)
        return Response(guess_selectors.blinding_report(request.user, study))
