"""Participants API (v1). Thin views: parse, fetch with an access check, call one service, render.

Configuration (studies, sites, arms, criteria, consent versions, staff roles) is for administrators: each view asks
``participants.access`` first, so anyone else gets a 403 whatever the body, and the service asks again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.utils.translation import get_language
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.selectors import participant_history
from participants import access, hooks, selectors, services
from participants.demographics import form_as_dict
from participants.models import ConsentDocument, EligibilityCriterion, Participant, Site, StaffMembership, Study
from participants.serializers import (
    ArmInput,
    ArmOutput,
    ConsentDocumentInput,
    ConsentDocumentOutput,
    ConsentInput,
    ContactOutput,
    CriterionInput,
    CriterionOutput,
    CriterionRetireInput,
    DemographicsInput,
    DemographicsOutput,
    EligibilityInput,
    HistoryOutput,
    MembershipInput,
    MembershipOutput,
    MembershipRevokeInput,
    ParticipantCreateInput,
    ParticipantOutput,
    ParticipantUpdateInput,
    RandomizeInput,
    SiteCreateInput,
    SiteOutput,
    SiteUpdateInput,
    StudyCreateInput,
    StudyOutput,
    StudyUpdateInput,
    UnblindInput,
    UnblindOutput,
    WithdrawInput,
)
from trialsite.errors import ServiceError
from trialsite.roles import MANAGE


def render_participant(
    request: Request,
    participant: Participant,
    *,
    consent_version: str | None,
    allocation_visible: bool | None = None,
) -> dict[str, Any]:
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
    data["consent_version"] = consent_version
    return data


def _require_manage(request: Request, site_id: int) -> None:
    access.require_role(request.user, site_id, MANAGE, "change participants")


def _render(request: Request, participant_id: str) -> dict[str, Any]:
    """The participant as stored now, read back through the user's scope."""
    participant = selectors.participant_get(request.user, participant_id)
    record = selectors.latest_consent(participant)
    return render_participant(request, participant, consent_version=record.document.version if record else None)


class ParticipantFilter(django_filters.FilterSet):
    site = django_filters.CharFilter(field_name="site__code")
    study = django_filters.CharFilter(field_name="study__code")
    status = django_filters.MultipleChoiceFilter(choices=Participant.Status.choices)

    class Meta:
        model = Participant
        fields = ["site", "study", "status", "needs_reconsent", "stratum"]


class ParticipantListCreate(ListAPIView[Participant]):
    filterset_class = ParticipantFilter
    serializer_class = ParticipantOutput

    def get_queryset(self) -> QuerySet[Participant]:
        return selectors.participants_for(self.request.user).select_related("contact").order_by("participant_id")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        assert page is not None  # every list is paginated (settings.REST_FRAMEWORK)
        rows: list[Participant] = list(page)
        # What the user may see is asked once per site (and study), not per row.
        allocation: dict[tuple[int, int], bool] = {}
        contact_sites: dict[int, bool] = {}
        for p in rows:
            if (p.site_id, p.study_id) not in allocation:
                allocation[p.site_id, p.study_id] = access.can_see_allocation(
                    request.user, site_id=p.site_id, study=p.study
                )
            if p.site_id not in contact_sites:
                contact_sites[p.site_id] = access.can_see_contact(request.user, p.site_id)
        # One query for the allocations this user may see, one for consents: no per-row queries.
        visible_ids = {p.pk for p in rows if allocation[p.site_id, p.study_id]}
        arms = selectors.arm_codes(visible_ids)
        consents = selectors.latest_consent_versions(p.pk for p in rows)
        # One serializer for the page (and one for contacts): their fields are built once, not once per row.
        contact_output = ContactOutput()
        data = []
        for participant, fields in zip(rows, ParticipantOutput(rows, many=True).data, strict=True):
            item = dict(fields)
            if contact_sites[participant.site_id]:
                contact = getattr(participant, "contact", None)
                item["contact"] = contact_output.to_representation(contact) if contact else None
            item["consent_version"] = consents.get(participant.pk)
            if participant.pk in visible_ids:
                item["arm"] = arms.get(participant.pk)
            data.append(item)
        return self.get_paginated_response(data)

    @extend_schema(request=ParticipantCreateInput, responses={201: ParticipantOutput})
    def post(self, request: Request) -> Response:
        payload = ParticipantCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values = payload.validated_data
        site = selectors.site_of_user(request.user, values["site"])
        if site is None:
            raise serializers.ValidationError({"site": [f"unknown site {values['site']!r}"]})
        study = selectors.study_by_code(values["study"])
        if study is None:
            raise serializers.ValidationError({"study": [f"unknown study {values['study']!r}"]})
        _require_manage(request, site.id)
        participant = services.participant_create(
            study=study, site=site, by=request.user, contact=values.get("contact"), stratum=values.get("stratum", "")
        )
        return Response(_render(request, participant.participant_id), status=status.HTTP_201_CREATED)


class ParticipantDetail(APIView):
    @extend_schema(responses=ParticipantOutput)
    def get(self, request: Request, participant_id: str) -> Response:
        return Response(_render(request, participant_id))

    @extend_schema(request=ParticipantUpdateInput, responses=ParticipantOutput)
    def patch(self, request: Request, participant_id: str) -> Response:
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
        return Response(_render(request, participant_id))


class _ParticipantAction(APIView):
    input_class: type[serializers.Serializer[Any]]

    def post(self, request: Request, participant_id: str) -> Response:
        participant = selectors.participant_get(request.user, participant_id)
        payload = self.input_class(data=request.data)
        payload.is_valid(raise_exception=True)
        _require_manage(request, participant.site_id)
        self.perform(request, participant, payload.validated_data)
        return Response(_render(request, participant_id))

    def perform(self, request: Request, participant: Participant, values: dict[str, Any]) -> None:
        raise ServiceError("unsupported action")


@extend_schema(request=EligibilityInput, responses=ParticipantOutput)
class ParticipantEligibility(_ParticipantAction):
    input_class = EligibilityInput

    def perform(self, request: Request, participant: Participant, values: dict[str, Any]) -> None:
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

    def perform(self, request: Request, participant: Participant, values: dict[str, Any]) -> None:
        obtained_by = request.user
        if values.get("obtained_by"):
            staff = selectors.staff_member_at(participant.site, values["obtained_by"])
            if staff is None:
                raise ServiceError("unknown staff member", field_errors={"obtained_by": ["not a staff member here"]})
            obtained_by = staff
        services.consent_record(
            participant=participant,
            version=values["version"],
            signed_at=values["signed_at"],
            by=request.user,
            obtained_by=obtained_by,
        )


class EnrollInput(serializers.Serializer[Any]):
    pass


@extend_schema(request=None, responses=ParticipantOutput)
class ParticipantEnroll(_ParticipantAction):
    input_class = EnrollInput

    def perform(self, request: Request, participant: Participant, values: dict[str, Any]) -> None:
        services.participant_enroll(participant=participant, by=request.user)


@extend_schema(request=RandomizeInput, responses=ParticipantOutput)
class ParticipantRandomize(_ParticipantAction):
    input_class = RandomizeInput

    def perform(self, request: Request, participant: Participant, values: dict[str, Any]) -> None:
        services.participant_randomize(participant=participant, by=request.user, stratum=values.get("stratum") or None)


@extend_schema(request=WithdrawInput, responses=ParticipantOutput)
class ParticipantWithdraw(_ParticipantAction):
    input_class = WithdrawInput

    def perform(self, request: Request, participant: Participant, values: dict[str, Any]) -> None:
        services.participant_withdraw(
            participant=participant,
            level=values["level"],
            reason=values["reason"],
            date=values["date"],
            by=request.user,
        )


def _render_demographics(participant: Participant) -> dict[str, Any]:
    record = selectors.demographics_of(participant)
    return {
        "participant_id": participant.participant_id,
        "form": form_as_dict(selectors.demographic_form_active(), get_language() or "en"),
        "answers": dict(record.answers) if record is not None else {},
        "form_version": record.form_version if record is not None else None,
        "recorded_at": record.recorded_at if record is not None else None,
    }


class ParticipantDemographics(APIView):
    """Baseline demographics: the active form (labels in the request's language) and the recorded answers. For the
    staff who manage participants at the participant's site."""

    @extend_schema(summary="A participant's baseline demographics and the form", responses=DemographicsOutput)
    def get(self, request: Request, participant_id: str) -> Response:
        participant = selectors.participant_get(request.user, participant_id)
        access.require_role(request.user, participant.site_id, MANAGE, "read demographics")
        return Response(DemographicsOutput(_render_demographics(participant)).data)

    @extend_schema(
        summary="Record or correct baseline demographics (a correction needs a reason)",
        request=DemographicsInput,
        responses=DemographicsOutput,
    )
    def put(self, request: Request, participant_id: str) -> Response:
        participant = selectors.participant_get(request.user, participant_id)
        payload = DemographicsInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values = payload.validated_data
        services.demographics_record(
            participant=participant, answers=values["answers"], reason=values.get("reason"), by=request.user
        )
        return Response(DemographicsOutput(_render_demographics(participant)).data)


class ParticipantHistory(APIView):
    @extend_schema(responses=HistoryOutput(many=True))
    def get(self, request: Request, participant_id: str) -> Response:
        participant = selectors.participant_get(request.user, participant_id)
        events = participant_history(
            participant.participant_id,
            can_see_allocation=access.can_see_allocation(
                request.user, site_id=participant.site_id, study=participant.study
            ),
            can_see_contact=access.can_see_contact(request.user, participant.site_id),
            can_see_safety=not access.safety_hidden_from(
                request.user, site_id=participant.site_id, study=participant.study
            ),
            hidden=hooks.history_hidden(request.user, participant),
        )
        return Response(HistoryOutput(events, many=True).data)


# --- studies and sites -------------------------------------------------------------------------------------------


def _studies(codes: Iterable[str]) -> list[Study]:
    """The studies named by ``codes``, or a 400 naming the unknown ones."""
    codes = list(dict.fromkeys(codes))
    found = selectors.studies_by_code(codes)
    unknown = [code for code in codes if code not in found]
    if unknown:
        raise serializers.ValidationError({"studies": [f"unknown study {code!r}" for code in unknown]})
    return [found[code] for code in codes]


class StudyListCreate(ListAPIView[Study]):
    serializer_class = StudyOutput

    def get_queryset(self) -> QuerySet[Study]:
        return selectors.studies_for(self.request.user)

    @extend_schema(
        summary="Create a study (superusers; audited)", request=StudyCreateInput, responses={201: StudyOutput}
    )
    def post(self, request: Request) -> Response:
        access.require_configure(request.user, "create a study")
        payload = StudyCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        study = services.study_create(by=request.user, **payload.validated_data)
        return Response(StudyOutput(study).data, status=status.HTTP_201_CREATED)


class StudyDetail(APIView):
    @extend_schema(
        summary="Change a study's settings (superusers; a reason; audited)",
        description="Blinding and protocol are fixed once a participant is randomized (409). The code never "
        "changes; unblinding is POST .../unblind/.",
        request=StudyUpdateInput,
        responses=StudyOutput,
    )
    def patch(self, request: Request, code: str) -> Response:
        study = selectors.configurable_study_get(request.user, code)
        access.require_configure(request.user, "change a study")
        payload = StudyUpdateInput(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        study = services.study_update(study=study, by=request.user, **payload.validated_data)
        return Response(StudyOutput(study).data)


class SiteListCreate(ListAPIView[Site]):
    serializer_class = SiteOutput

    def get_queryset(self) -> QuerySet[Site]:
        return selectors.sites_for(self.request.user).prefetch_related("studies")

    @extend_schema(summary="Create a site (superusers; audited)", request=SiteCreateInput, responses={201: SiteOutput})
    def post(self, request: Request) -> Response:
        access.require_configure(request.user, "create a site")
        payload = SiteCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values = dict(payload.validated_data)
        values["studies"] = _studies(values.get("studies", []))
        site = services.site_create(by=request.user, **values)
        return Response(SiteOutput(site, context={"request": request}).data, status=status.HTTP_201_CREATED)


class SiteDetail(APIView):
    @extend_schema(
        summary="Change a site (its administrators; its studies: superusers; a reason; audited)",
        request=SiteUpdateInput,
        responses=SiteOutput,
    )
    def patch(self, request: Request, site_code: str) -> Response:
        site = selectors.configurable_site_get(request.user, site_code)
        access.require_configure(request.user, "change this site", site_id=site.pk)
        payload = SiteUpdateInput(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        values = dict(payload.validated_data)
        if "studies" in values:
            values["studies"] = _studies(values["studies"])
        site = services.site_update(site=site, by=request.user, **values)
        return Response(SiteOutput(site, context={"request": request}).data)


def _create_in_study(
    request: Request,
    code: str,
    *,
    what: str,
    payload_class: type[serializers.Serializer[Any]],
    service: Callable[..., Any],
    output_class: type[serializers.BaseSerializer[Any]],
) -> Response:
    """The study-scoped configuration writes (arms, criteria, consent versions): find the study, check the role,
    validate the body, call the one service, answer 201 with what it made."""
    study = selectors.configurable_study_get(request.user, code)
    access.require_configure(request.user, what)
    payload = payload_class(data=request.data)
    payload.is_valid(raise_exception=True)
    made = service(study=study, by=request.user, **payload.validated_data)
    return Response(output_class(made).data, status=status.HTTP_201_CREATED)


class StudyArms(APIView):
    @extend_schema(
        summary="Add an arm to a study (superusers; before any randomization; audited)",
        request=ArmInput,
        responses={201: ArmOutput},
    )
    def post(self, request: Request, code: str) -> Response:
        return _create_in_study(
            request,
            code,
            what="add arms to a study",
            payload_class=ArmInput,
            service=services.arm_create,
            output_class=ArmOutput,
        )


@extend_schema_view(get=extend_schema(summary="A study's eligibility criteria, retired ones included (retired_at set)"))
class StudyCriteria(ListAPIView[EligibilityCriterion]):
    serializer_class = CriterionOutput
    # The schema reads the model from here (get_queryset needs the URL's code); no query runs.
    queryset = EligibilityCriterion.objects.none()

    def get_queryset(self) -> QuerySet[EligibilityCriterion]:
        return selectors.criteria_of(selectors.configurable_study_get(self.request.user, self.kwargs["code"]))

    @extend_schema(
        summary="Add an eligibility criterion (superusers; audited)",
        request=CriterionInput,
        responses={201: CriterionOutput},
    )
    def post(self, request: Request, code: str) -> Response:
        return _create_in_study(
            request,
            code,
            what="add eligibility criteria",
            payload_class=CriterionInput,
            service=services.criterion_create,
            output_class=CriterionOutput,
        )


class CriterionRetire(APIView):
    @extend_schema(
        summary="Retire an eligibility criterion: no longer asked, answers kept (superusers; a reason; audited)",
        request=CriterionRetireInput,
        responses=CriterionOutput,
    )
    def post(self, request: Request, code: str, id: int) -> Response:
        study = selectors.configurable_study_get(request.user, code)
        criterion = selectors.criterion_get(study, id)
        access.require_configure(request.user, "retire eligibility criteria")
        payload = CriterionRetireInput(data=request.data)
        payload.is_valid(raise_exception=True)
        criterion = services.criterion_retire(
            criterion=criterion, by=request.user, reason=payload.validated_data["reason"]
        )
        return Response(CriterionOutput(criterion).data)


@extend_schema_view(get=extend_schema(summary="A study's consent versions, oldest first; the last one is current"))
class StudyConsentDocuments(ListAPIView[ConsentDocument]):
    serializer_class = ConsentDocumentOutput
    # The schema reads the model from here (get_queryset needs the URL's code); no query runs.
    queryset = ConsentDocument.objects.none()

    def get_queryset(self) -> QuerySet[ConsentDocument]:
        return selectors.consent_documents_of(selectors.configurable_study_get(self.request.user, self.kwargs["code"]))

    @extend_schema(
        summary="Publish a consent version (superusers; marks earlier consents for re-consent; audited)",
        request=ConsentDocumentInput,
        responses={201: ConsentDocumentOutput},
    )
    def post(self, request: Request, code: str) -> Response:
        return _create_in_study(
            request,
            code,
            what="publish a consent version",
            payload_class=ConsentDocumentInput,
            service=services.consent_document_publish,
            output_class=ConsentDocumentOutput,
        )


@extend_schema_view(get=extend_schema(summary="Staff roles at a site (its administrators and superusers)"))
class SiteMemberships(ListAPIView[StaffMembership]):
    serializer_class = MembershipOutput
    # The schema reads the model from here (get_queryset needs the URL's code); no query runs.
    queryset = StaffMembership.objects.none()

    def get_queryset(self) -> QuerySet[StaffMembership]:
        site = selectors.configurable_site_get(self.request.user, self.kwargs["site_code"])
        access.require_configure(self.request.user, "see the roles at this site", site_id=site.pk)
        return selectors.memberships_at(site)

    @extend_schema(
        summary="Grant a role at a site (its administrators; audited)",
        request=MembershipInput,
        responses={201: MembershipOutput},
    )
    def post(self, request: Request, site_code: str) -> Response:
        site = selectors.configurable_site_get(request.user, site_code)
        access.require_configure(request.user, "grant roles at this site", site_id=site.pk)
        payload = MembershipInput(data=request.data)
        payload.is_valid(raise_exception=True)
        user = selectors.user_by_username(payload.validated_data["username"])
        if user is None:
            raise serializers.ValidationError({"username": ["unknown user"]})
        membership = services.membership_grant(
            user=user, site=site, role=payload.validated_data["role"], by=request.user
        )
        return Response(MembershipOutput(membership).data, status=status.HTTP_201_CREATED)


class MembershipDetail(APIView):
    @extend_schema(
        summary="Revoke a role at a site (its administrators; a reason; audited)",
        parameters=[OpenApiParameter("reason", str, required=True, description="Why the role is revoked")],
        request=None,
        responses={204: OpenApiResponse(description="Revoked")},
    )
    def delete(self, request: Request, site_code: str, id: int) -> Response:
        site = selectors.configurable_site_get(request.user, site_code)
        access.require_configure(request.user, "revoke roles at this site", site_id=site.pk)
        membership = selectors.membership_get(site, id)
        payload = MembershipRevokeInput(data=request.query_params)
        payload.is_valid(raise_exception=True)
        services.membership_revoke(
            user=membership.user,
            site=site,
            role=membership.role,
            by=request.user,
            reason=payload.validated_data["reason"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class StudyUnblind(APIView):
    @extend_schema(
        summary="Approve unblinding a study (two approvals by two people: an investigator and the protocol's second "
        "approver; each audited; once)",
        description="The first approval answers 202 and leaves the study blinded (``awaiting`` names who may give "
        "the second); the second, by a different person, answers 200 with ``unblinded: true``. A study outside your "
        "sites answers 404, like an unknown code.",
        request=UnblindInput,
        responses={
            200: UnblindOutput,
            202: UnblindOutput,
            400: OpenApiResponse(description="No reason, an open-label study, or one already unblinded"),
            403: OpenApiResponse(description="Your role may not approve, or the second approval needs another role"),
            404: OpenApiResponse(description="No such study among your sites"),
            409: OpenApiResponse(description="You have already approved: the second approval is another person's"),
        },
    )
    def post(self, request: Request, code: str) -> Response:
        data = UnblindInput(data=request.data)
        data.is_valid(raise_exception=True)
        study = selectors.study_of_user_get(request.user, code)
        state = services.study_unblind(study=study, by=request.user, reason=data.validated_data["reason"])
        return Response(
            UnblindOutput(state).data, status=status.HTTP_200_OK if state.unblinded else status.HTTP_202_ACCEPTED
        )


class StudyUnblindWithdraw(APIView):
    @extend_schema(
        summary="Withdraw your own standing approval to unblind a study, before the second arrives (a reason; audited)",
        request=UnblindInput,
        responses={
            200: UnblindOutput,
            400: OpenApiResponse(description="No reason, an open-label study, or one already unblinded"),
            404: OpenApiResponse(description="No such study among your sites"),
            409: OpenApiResponse(description="You have no standing approval"),
        },
    )
    def post(self, request: Request, code: str) -> Response:
        data = UnblindInput(data=request.data)
        data.is_valid(raise_exception=True)
        study = selectors.study_of_user_get(request.user, code)
        state = services.study_unblind_withdraw(study=study, by=request.user, reason=data.validated_data["reason"])
        return Response(UnblindOutput(state).data)
