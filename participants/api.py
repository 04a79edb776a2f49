"""Participants API (v1). Thin views: parse, fetch with an access check, call one service, render."""

from __future__ import annotations

import django_filters
from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.selectors import participant_history
from participants import access, selectors, services
from participants.models import Participant, Site, Study
from participants.serializers import (
    ConsentInput,
    ContactOutput,
    EligibilityInput,
    HistoryOutput,
    ParticipantCreateInput,
    ParticipantOutput,
    ParticipantUpdateInput,
    RandomizeInput,
    WithdrawInput,
)
from trialsite.errors import PermissionDeniedError, ServiceError


def render_participant(request, participant: Participant, *, allocation_visible: bool | None = None) -> dict:
    data = dict(ParticipantOutput(participant).data)
    if allocation_visible is None:
        allocation_visible = access.can_see_allocation(
            request.user, site_id=participant.site_id, study=participant.study
        )
    if allocation_visible:
        slot = getattr(participant, "allocation", None)
        data["arm"] = slot.arm.code if slot is not None else None
    if access.can_see_contact(request.user, participant.site_id):
        contact = getattr(participant, "contact", None)
        data["contact"] = ContactOutput(contact).data if contact else None
    consent = getattr(participant, "_latest_consent_version", None)
    data["consent_version"] = consent
    return data


def _require_manage(request, site_id: int) -> None:
    if not access.can_manage(request.user, site_id):
        raise PermissionDeniedError("your role at this site cannot change participants")


def _reload(request, participant_id: str) -> Participant:
    participant = selectors.participant_get(request.user, participant_id)
    record = services.latest_consent(participant)
    participant._latest_consent_version = record.document.version if record else None
    return participant


class ParticipantFilter(django_filters.FilterSet):
    site = django_filters.CharFilter(field_name="site__code")
    study = django_filters.CharFilter(field_name="study__code")
    status = django_filters.MultipleChoiceFilter(choices=Participant.Status.choices)

    class Meta:
        model = Participant
        fields = ["site", "study", "status", "needs_reconsent", "stratum"]


class ParticipantListCreate(ListAPIView):
    filterset_class = ParticipantFilter
    serializer_class = ParticipantOutput

    def get_queryset(self):
        return selectors.participants_for(self.request.user).select_related("contact").order_by("participant_id")

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        rows = list(page)
        # One query for the allocations this user may see, one for consents: no per-row queries.
        visible_ids = [p.pk for p in rows if access.can_see_allocation(request.user, site_id=p.site_id, study=p.study)]
        from participants.models import AllocationSlot, ConsentRecord

        arms = dict(
            AllocationSlot.objects.filter(participant_id__in=visible_ids).values_list("participant_id", "arm__code")
        )
        consents: dict[int, str] = {}
        for pid, version in (
            ConsentRecord.objects.filter(participant__in=rows)
            .order_by("id")
            .values_list("participant_id", "document__version")
        ):
            consents[pid] = version
        data = []
        for participant in rows:
            participant._latest_consent_version = consents.get(participant.pk)
            item = render_participant(request, participant, allocation_visible=False)
            if participant.pk in visible_ids:
                item["arm"] = arms.get(participant.pk)
            data.append(item)
        return self.get_paginated_response(data)

    @extend_schema(request=ParticipantCreateInput, responses={201: ParticipantOutput})
    def post(self, request):
        payload = ParticipantCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values = payload.validated_data
        site = Site.objects.filter(code=values["site"], id__in=access.site_ids_for(request.user)).first()
        if site is None:
            raise serializers.ValidationError({"site": [f"unknown site {values['site']!r}"]})
        study = Study.objects.filter(code=values["study"]).first()
        if study is None:
            raise serializers.ValidationError({"study": [f"unknown study {values['study']!r}"]})
        _require_manage(request, site.id)
        participant = services.participant_create(
            study=study, site=site, by=request.user, contact=values.get("contact"), stratum=values.get("stratum", "")
        )
        return Response(
            render_participant(request, _reload(request, participant.participant_id)), status=status.HTTP_201_CREATED
        )


class ParticipantDetail(APIView):
    @extend_schema(responses=ParticipantOutput)
    def get(self, request, participant_id: str):
        return Response(render_participant(request, _reload(request, participant_id)))

    @extend_schema(request=ParticipantUpdateInput, responses=ParticipantOutput)
    def patch(self, request, participant_id: str):
        participant = selectors.participant_get(request.user, participant_id)
        payload = ParticipantUpdateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        _require_manage(request, participant.site_id)
        values = payload.validated_data
        services.participant_update(
            participant=participant,
            by=request.user,
            reason=values.get("reason"),
            contact=values.get("contact"),
            stratum=values.get("stratum"),
            status=values.get("status"),
        )
        return Response(render_participant(request, _reload(request, participant_id)))


class _ParticipantAction(APIView):
    input_class: type[serializers.Serializer]

    def post(self, request, participant_id: str):
        participant = selectors.participant_get(request.user, participant_id)
        payload = self.input_class(data=request.data)
        payload.is_valid(raise_exception=True)
        _require_manage(request, participant.site_id)
        self.perform(request, participant, payload.validated_data)
        return Response(render_participant(request, _reload(request, participant_id)))

    def perform(self, request, participant, values):
        raise ServiceError("unsupported action")


@extend_schema(request=EligibilityInput, responses=ParticipantOutput)
class ParticipantEligibility(_ParticipantAction):
    input_class = EligibilityInput

    def perform(self, request, participant, values):
        services.eligibility_record(
            participant=participant,
            answers=values["answers"],
            by=request.user,
            override=values.get("override"),
            reason=values.get("reason"),
        )


@extend_schema(request=ConsentInput, responses=ParticipantOutput)
class ParticipantConsent(_ParticipantAction):
    input_class = ConsentInput

    def perform(self, request, participant, values):
        obtained_by = request.user
        if values.get("obtained_by"):
            user_model = get_user_model()
            obtained_by = user_model.objects.filter(
                username=values["obtained_by"], memberships__site=participant.site
            ).first()
            if obtained_by is None:
                raise ServiceError("unknown staff member", field_errors={"obtained_by": ["not a staff member here"]})
        services.consent_record(
            participant=participant,
            version=values["version"],
            signed_at=values["signed_at"],
            by=request.user,
            obtained_by=obtained_by,
        )


class EnrollInput(serializers.Serializer):
    pass


@extend_schema(request=None, responses=ParticipantOutput)
class ParticipantEnroll(_ParticipantAction):
    input_class = EnrollInput

    def perform(self, request, participant, values):
        services.participant_enroll(participant=participant, by=request.user)


@extend_schema(request=RandomizeInput, responses=ParticipantOutput)
class ParticipantRandomize(_ParticipantAction):
    input_class = RandomizeInput

    def perform(self, request, participant, values):
        services.participant_randomize(participant=participant, by=request.user, stratum=values.get("stratum") or None)


@extend_schema(request=WithdrawInput, responses=ParticipantOutput)
class ParticipantWithdraw(_ParticipantAction):
    input_class = WithdrawInput

    def perform(self, request, participant, values):
        services.participant_withdraw(
            participant=participant,
            level=values["level"],
            reason=values["reason"],
            date=values["date"],
            by=request.user,
        )


class ParticipantHistory(APIView):
    @extend_schema(responses=HistoryOutput(many=True))
    def get(self, request, participant_id: str):
        participant = selectors.participant_get(request.user, participant_id)
        events = participant_history(
            participant.participant_id,
            can_see_allocation=access.can_see_allocation(
                request.user, site_id=participant.site_id, study=participant.study
            ),
            can_see_contact=access.can_see_contact(request.user, participant.site_id),
        )
        return Response(HistoryOutput(events, many=True).data)


class StudyOutput(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    protocol_reference = serializers.CharField()
    protocol_code = serializers.CharField()
    target_enrollment = serializers.IntegerField()
    blinded = serializers.BooleanField()
    unblinded = serializers.BooleanField()
    arms = serializers.SerializerMethodField()

    def get_arms(self, obj) -> list[dict]:
        return [{"code": arm.code, "label": arm.label} for arm in obj.arms.all()]


class SiteOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    time_zone = serializers.CharField()
    studies = serializers.SerializerMethodField()
    roles = serializers.SerializerMethodField()

    def get_studies(self, obj) -> list[str]:
        return [study.code for study in obj.studies.all()]

    def get_roles(self, obj) -> list[str]:
        return sorted(access.roles_at(self.context["request"].user, obj.id))


class StudyList(ListAPIView):
    serializer_class = StudyOutput

    def get_queryset(self):
        return selectors.studies_for(self.request.user)


class SiteList(ListAPIView):
    serializer_class = SiteOutput

    def get_queryset(self):
        return selectors.sites_for(self.request.user).prefetch_related("studies")


def site_get(user, code: str) -> Site:
    return get_object_or_404(selectors.sites_for(user), code=code)
