"""Safety API (v1): adverse events, dosing sessions (doses, vital signs, closing), concomitant medications and the
investigators' medication overrides, and treatment guesses with the blinding report. Thin views: parse, fetch with an
access check, call one service, render.

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
from participants.access import is_superuser, site_ids_with
from participants.models import Participant
from safety import guess_selectors, selectors, services
from safety.models import AdverseEvent, ConcomitantMedication, DosingSession, MedicationOverride, TreatmentGuess
from safety.serializers import (
    AdverseEventCorrectInput,
    AdverseEventDetailOutput,
    AdverseEventInput,
    AdverseEventOutput,
    DosesInput,
    DosingCloseInput,
    DosingSessionInput,
    DosingSessionOutput,
    DosingSessionRecordInput,
    FollowUpInput,
    FollowUpOutput,
    GuessCorrectInput,
    GuessInput,
    GuessOutput,
    GuessReceiptOutput,
    MedicationCorrectInput,
    MedicationInput,
    MedicationOutput,
    MedicationOverrideInput,
    MedicationOverrideOutput,
    MedicationStopInput,
    ReviewInput,
    ReviewOutput,
    SummaryOutput,
    VitalSignCorrectInput,
    VitalSignInput,
    dosing_detail,
)
from scheduling import selectors as scheduling_selectors
from scheduling.models import Visit
from trialsite.errors import ServiceError
from trialsite.roles import ALWAYS_BLINDED

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


class MedicationFilter(django_filters.FilterSet):
    site = django_filters.CharFilter(field_name="participant__site__code")
    participant = django_filters.CharFilter(field_name="participant__participant_id")
    study = django_filters.CharFilter(field_name="participant__study__code")
    medication_class = django_filters.CharFilter()
    ongoing = django_filters.BooleanFilter(field_name="stop_date", lookup_expr="isnull")

    class Meta:
        model = ConcomitantMedication
        fields = ["site", "participant", "study", "medication_class", "ongoing"]


class MedicationListCreate(ListAPIView[ConcomitantMedication]):
    serializer_class = MedicationOutput
    filterset_class = MedicationFilter

    def get_queryset(self) -> QuerySet[ConcomitantMedication]:
        return selectors.medications_for(self.request.user).order_by("-start_date", "-id")

    @extend_schema(request=MedicationInput, responses={201: MedicationOutput})
    def post(self, request: Request) -> Response:
        payload = MedicationInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values: dict[str, Any] = dict(payload.validated_data)
        participant = participant_selectors.participant_get(request.user, values.pop("participant_id"))
        medication = services.medication_record(participant=participant, by=request.user, **values)
        row = selectors.medication_get(request.user, medication.pk)
        return Response(MedicationOutput(row).data, status=status.HTTP_201_CREATED)


class MedicationDetail(APIView):
    @extend_schema(responses=MedicationOutput)
    def get(self, request: Request, concomitant_medication_id: int) -> Response:
        return Response(MedicationOutput(selectors.medication_get(request.user, concomitant_medication_id)).data)


class MedicationCorrect(APIView):
    @extend_schema(request=MedicationCorrectInput, responses={200: MedicationOutput})
    def post(self, request: Request, concomitant_medication_id: int) -> Response:
        medication = selectors.medication_get(request.user, concomitant_medication_id)
        payload = MedicationCorrectInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values: dict[str, Any] = dict(payload.validated_data)
        reason = values.pop("reason")
        services.medication_correct(medication=medication, reason=reason, by=request.user, **values)
        return Response(MedicationOutput(selectors.medication_get(request.user, concomitant_medication_id)).data)


class MedicationStop(APIView):
    @extend_schema(request=MedicationStopInput, responses={200: MedicationOutput})
    def post(self, request: Request, concomitant_medication_id: int) -> Response:
        medication = selectors.medication_get(request.user, concomitant_medication_id)
        payload = MedicationStopInput(data=request.data)
        payload.is_valid(raise_exception=True)
        services.medication_stop(medication=medication, by=request.user, **payload.validated_data)
        return Response(MedicationOutput(selectors.medication_get(request.user, concomitant_medication_id)).data)


class MedicationOverrideFilter(django_filters.FilterSet):
    site = django_filters.CharFilter(field_name="participant__site__code")
    participant = django_filters.CharFilter(field_name="participant__participant_id")
    visit = django_filters.NumberFilter(field_name="visit_id")

    class Meta:
        model = MedicationOverride
        fields = ["site", "participant", "visit"]


class MedicationOverrideListCreate(ListAPIView[MedicationOverride]):
    serializer_class = MedicationOverrideOutput
    filterset_class = MedicationOverrideFilter

    def get_queryset(self) -> QuerySet[MedicationOverride]:
        return selectors.medication_overrides_for(self.request.user).order_by("-recorded_at", "-id")

    @extend_schema(request=MedicationOverrideInput, responses={201: MedicationOverrideOutput})
    def post(self, request: Request) -> Response:
        payload = MedicationOverrideInput(data=request.data)
        payload.is_valid(raise_exception=True)
        visit = scheduling_selectors.visit_get(request.user, payload.validated_data["visit"])
        override = services.medication_override_record(
            visit=visit, reason=payload.validated_data["reason"], by=request.user
        )
        row = selectors.medication_override_get(request.user, override.pk)
        return Response(MedicationOverrideOutput(row).data, status=status.HTTP_201_CREATED)


class MedicationOverrideDetail(APIView):
    @extend_schema(responses=MedicationOverrideOutput)
    def get(self, request: Request, medication_override_id: int) -> Response:
        return Response(
            MedicationOverrideOutput(selectors.medication_override_get(request.user, medication_override_id)).data
        )


# --- dosing sessions ------------------------------------------------------------------------------------------------


def _staff(participant: Participant, usernames: list[str]) -> list[Any]:
    users: list[Any] = []
    unknown: list[str] = []
    for name in usernames:
        user = participant_selectors.staff_member_at(participant.site, name)
        if user is None:
            unknown.append(name)
        else:
            users.append(user)
    if unknown:
        raise ServiceError(
            "unknown staff", field_errors={"present_staff": [f"no staff member at this site: {', '.join(unknown)}"]}
        )
    return users


def _dose_hidden_sites(user: Any) -> set[int]:
    """The sites where the user holds an always-blinded role (a superuser holds none: site_ids_with would name
    every site for them)."""
    return set() if is_superuser(user) else site_ids_with(user, ALWAYS_BLINDED)


def _detail(request: Request, session_id: int, *, status_code: int = status.HTTP_200_OK) -> Response:
    view = selectors.dosing_view(selectors.dosing_session_get(request.user, session_id))
    return Response(dosing_detail(view, dose_hidden_sites=_dose_hidden_sites(request.user)), status=status_code)


class DosingSessionFilter(django_filters.FilterSet):
    site = django_filters.CharFilter(field_name="participant__site__code")
    participant = django_filters.CharFilter(field_name="participant__participant_id")
    study = django_filters.CharFilter(field_name="participant__study__code")
    closed = django_filters.BooleanFilter(field_name="closed_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = DosingSession
        fields = ["site", "participant", "study", "closed"]


class DosingSessionListCreate(ListAPIView[DosingSession]):
    serializer_class = DosingSessionOutput
    filterset_class = DosingSessionFilter

    def get_queryset(self) -> QuerySet[DosingSession]:
        return selectors.dosing_sessions_for(self.request.user).order_by("-started_at", "-id")

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "dose_hidden_sites": _dose_hidden_sites(self.request.user)}

    @extend_schema(request=DosingSessionInput, responses={201: DosingSessionOutput})
    def post(self, request: Request) -> Response:
        payload = DosingSessionInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values: dict[str, Any] = dict(payload.validated_data)
        visit = scheduling_selectors.visit_get(request.user, values.pop("visit"))
        staff = _staff(visit.participant, values.pop("present_staff"))
        values["present_others"] = [dict(p) for p in values["present_others"]]
        session = services.dosing_session_open(visit=visit, present_staff=staff, by=request.user, **values)
        return _detail(request, session.pk, status_code=status.HTTP_201_CREATED)


class DosingSessionDetail(APIView):
    @extend_schema(responses=DosingSessionOutput)
    def get(self, request: Request, dosing_session_id: int) -> Response:
        return _detail(request, dosing_session_id)


class DosingSessionRecord(APIView):
    @extend_schema(request=DosingSessionRecordInput, responses={200: DosingSessionOutput})
    def post(self, request: Request, dosing_session_id: int) -> Response:
        session = selectors.dosing_session_get(request.user, dosing_session_id)
        payload = DosingSessionRecordInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values: dict[str, Any] = dict(payload.validated_data)
        if "present_staff" in values:
            values["present_staff"] = _staff(session.participant, values["present_staff"])
        if "present_others" in values:
            values["present_others"] = [dict(p) for p in values["present_others"]]
        services.dosing_session_record(session=session, by=request.user, **values)
        return _detail(request, dosing_session_id)


class DosingDoses(APIView):
    @extend_schema(request=DosesInput, responses={200: DosingSessionOutput})
    def post(self, request: Request, dosing_session_id: int) -> Response:
        session = selectors.dosing_session_get(request.user, dosing_session_id)
        payload = DosesInput(data=request.data)
        payload.is_valid(raise_exception=True)
        services.dosing_doses_record(session=session, by=request.user, **payload.validated_data)
        return _detail(request, dosing_session_id)


class VitalSignCreate(APIView):
    @extend_schema(request=VitalSignInput, responses={201: DosingSessionOutput})
    def post(self, request: Request, dosing_session_id: int) -> Response:
        session = selectors.dosing_session_get(request.user, dosing_session_id)
        payload = VitalSignInput(data=request.data)
        payload.is_valid(raise_exception=True)
        services.vital_sign_record(session=session, by=request.user, **payload.validated_data)
        return _detail(request, dosing_session_id, status_code=status.HTTP_201_CREATED)


class VitalSignCorrect(APIView):
    @extend_schema(request=VitalSignCorrectInput, responses={200: DosingSessionOutput})
    def post(self, request: Request, vital_sign_id: int) -> Response:
        vital = selectors.vital_sign_get(request.user, vital_sign_id)
        payload = VitalSignCorrectInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values: dict[str, Any] = dict(payload.validated_data)
        services.vital_sign_correct(vital_sign=vital, reason=values.pop("reason"), by=request.user, **values)
        return _detail(request, vital.session_id)


class DosingSessionClose(APIView):
    @extend_schema(request=DosingCloseInput, responses={200: DosingSessionOutput})
    def post(self, request: Request, dosing_session_id: int) -> Response:
        session = selectors.dosing_session_get(request.user, dosing_session_id)
        payload = DosingCloseInput(data=request.data)
        payload.is_valid(raise_exception=True)
        services.dosing_session_close(session=session, by=request.user, **payload.validated_data)
        return _detail(request, dosing_session_id)
