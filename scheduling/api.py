"""Scheduling API (v1). Thin views: parse, fetch with an access check, call one service, render.

Permissions: every role at a site reads its visits and calendar. Coordinators, investigators and admins make every
change; therapists may also schedule (book) sessions, since they book dosing sessions as a dyad."""

from __future__ import annotations

import django_filters
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from participants import access
from participants import selectors as participant_selectors
from participants.models import Site
from scheduling import ical, selectors, services
from scheduling.models import ProtocolDeviation, Room, Visit
from scheduling.serializers import (
    CompleteInput,
    DeviationInput,
    DeviationOutput,
    ReasonInput,
    RoomOutput,
    ScheduledVisitOutput,
    ScheduleInput,
    UnscheduledVisitInput,
    VisitOutput,
)
from trialsite.errors import ServiceError
from trialsite.roles import MANAGE, Role

SCHEDULERS = MANAGE | {Role.THERAPIST}


def _require(request, site_id: int, roles, what: str) -> None:
    access.require_role(request.user, site_id, roles, what)


class VisitFilter(django_filters.FilterSet):
    site = django_filters.CharFilter(field_name="participant__site__code")
    participant = django_filters.CharFilter(field_name="participant__participant_id")
    status = django_filters.MultipleChoiceFilter(choices=Visit.Status.choices)
    kind = django_filters.MultipleChoiceFilter(choices=Visit.KIND_CHOICES)
    # from/to are local dates on the plan's target date (an unscheduled visit has none, so its slot date is used).
    from_ = django_filters.DateFilter(method="filter_from", label="from")
    to = django_filters.DateFilter(method="filter_to")
    needs_reschedule = django_filters.BooleanFilter()

    class Meta:
        model = Visit
        fields = ["site", "participant", "status", "kind", "needs_reschedule"]

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and "from" in data:
            data = data.copy()
            data["from_"] = data["from"]
        super().__init__(data, *args, **kwargs)

    def filter_from(self, qs, name, value):
        from django.db.models import Q

        return qs.filter(Q(target_date__gte=value) | Q(target_date__isnull=True, scheduled_start__date__gte=value))

    def filter_to(self, qs, name, value):
        from django.db.models import Q

        return qs.filter(Q(target_date__lte=value) | Q(target_date__isnull=True, scheduled_start__date__lte=value))


class VisitList(ListAPIView):
    serializer_class = VisitOutput
    filterset_class = VisitFilter

    def get_queryset(self):
        return selectors.visits_for(self.request.user).order_by("target_date", "participant__participant_id", "id")


class ParticipantVisits(APIView):
    @extend_schema(responses=VisitOutput(many=True))
    def get(self, request, participant_id: str):
        participant = participant_selectors.participant_get(request.user, participant_id)
        return Response(VisitOutput(selectors.visits_of(participant), many=True).data)

    @extend_schema(request=UnscheduledVisitInput, responses={201: VisitOutput})
    def post(self, request, participant_id: str):
        participant = participant_selectors.participant_get(request.user, participant_id)
        payload = UnscheduledVisitInput(data=request.data)
        payload.is_valid(raise_exception=True)
        _require(request, participant.site_id, MANAGE, "add visits")
        values = payload.validated_data
        visit = services.visit_add_unscheduled(
            participant=participant,
            kind=values["kind"],
            name=values.get("name", ""),
            duration_minutes=values["duration_minutes"],
            by=request.user,
            reason=values.get("reason") or None,
        )
        return Response(VisitOutput(selectors.visit_get(request.user, visit.pk)).data, status=status.HTTP_201_CREATED)


class VisitDetail(APIView):
    @extend_schema(responses=VisitOutput)
    def get(self, request, visit_id: int):
        return Response(VisitOutput(selectors.visit_get(request.user, visit_id)).data)


class VisitSchedule(APIView):
    @extend_schema(request=ScheduleInput, responses={200: ScheduledVisitOutput, 409: OpenApiResponse()})
    def post(self, request, visit_id: int):
        visit = selectors.visit_get(request.user, visit_id)
        payload = ScheduleInput(data=request.data)
        payload.is_valid(raise_exception=True)
        _require(request, visit.participant.site_id, SCHEDULERS, "schedule visits")
        values = payload.validated_data
        room = None
        if values.get("room"):
            room = Room.objects.filter(site_id=visit.participant.site_id, name=values["room"]).first()
            if room is None:
                raise ServiceError("unknown room", field_errors={"room": [f"no room {values['room']!r} at this site"]})
        _, warnings = services.visit_schedule(
            visit=visit,
            start=values["start"],
            end=values.get("end"),
            room=room,
            staff=values.get("staff", []),
            by=request.user,
            reason=values.get("reason") or None,
        )
        data = dict(VisitOutput(selectors.visit_get(request.user, visit_id)).data)
        data["warnings"] = warnings
        return Response(data)


class _VisitAction(APIView):
    input_class = ReasonInput

    def post(self, request, visit_id: int):
        visit = selectors.visit_get(request.user, visit_id)
        payload = self.input_class(data=request.data)
        payload.is_valid(raise_exception=True)
        _require(request, visit.participant.site_id, MANAGE, "change visits")
        self.perform(request, visit, payload.validated_data)
        return Response(VisitOutput(selectors.visit_get(request.user, visit_id)).data)

    def perform(self, request, visit, values):  # pragma: no cover - every subclass overrides
        raise ServiceError("unsupported action")


@extend_schema(request=CompleteInput, responses=VisitOutput)
class VisitComplete(_VisitAction):
    input_class = CompleteInput

    def perform(self, request, visit, values):
        services.visit_complete(
            visit=visit, occurred_at=values["occurred_at"], by=request.user, reason=values.get("reason") or None
        )


@extend_schema(request=ReasonInput, responses=VisitOutput)
class VisitMiss(_VisitAction):
    def perform(self, request, visit, values):
        services.visit_miss(visit=visit, reason=values["reason"], by=request.user)


@extend_schema(request=ReasonInput, responses=VisitOutput)
class VisitCancel(_VisitAction):
    def perform(self, request, visit, values):
        services.visit_cancel(visit=visit, reason=values["reason"], by=request.user)


class ParticipantDeviations(APIView):
    @extend_schema(responses=DeviationOutput(many=True))
    def get(self, request, participant_id: str):
        participant = participant_selectors.participant_get(request.user, participant_id)
        rows = selectors.deviations_for(request.user).filter(participant=participant)
        return Response(DeviationOutput(rows, many=True).data)

    @extend_schema(request=DeviationInput, responses={201: DeviationOutput})
    def post(self, request, participant_id: str):
        participant = participant_selectors.participant_get(request.user, participant_id)
        payload = DeviationInput(data=request.data)
        payload.is_valid(raise_exception=True)
        _require(request, participant.site_id, MANAGE, "record deviations")
        values = payload.validated_data
        visit = None
        if values.get("visit"):
            visit = Visit.objects.filter(pk=values["visit"], participant=participant).first()
            if visit is None:
                raise ServiceError("unknown visit", field_errors={"visit": ["not a visit of this participant"]})
        deviation = services.deviation_record(
            participant=participant,
            visit=visit,
            type=values["type"],
            description=values["description"],
            by=request.user,
        )
        row = selectors.deviations_for(request.user).get(pk=deviation.pk)
        return Response(DeviationOutput(row).data, status=status.HTTP_201_CREATED)


class DeviationFilter(django_filters.FilterSet):
    site = django_filters.CharFilter(field_name="participant__site__code")
    type = django_filters.MultipleChoiceFilter(choices=ProtocolDeviation.Type.choices)

    class Meta:
        model = ProtocolDeviation
        fields = ["site", "type"]


class DeviationList(ListAPIView):
    serializer_class = DeviationOutput
    filterset_class = DeviationFilter

    def get_queryset(self):
        return selectors.deviations_for(self.request.user).order_by("-recorded_at", "-id")


class RoomList(ListAPIView):
    serializer_class = RoomOutput
    filterset_fields = {"site__code": ["exact"]}

    def get_queryset(self):
        return selectors.rooms_for(self.request.user).order_by("site__code", "name")


def _ics(body: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    # Calendars name participants (pseudonymously) and staff: no shared cache may keep them.
    response["Cache-Control"] = "private, no-store"
    return response


class ICalRenderer(BaseRenderer):
    """Lets calendar clients that send ``Accept: text/calendar`` through content negotiation; error bodies stay JSON."""

    media_type = "text/calendar"
    format = "ics"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        return JSONRenderer().render(data)


class SiteCalendar(APIView):
    renderer_classes = [JSONRenderer, ICalRenderer]

    @extend_schema(responses={(200, "text/calendar"): OpenApiResponse(description="iCalendar feed")})
    def get(self, request, site_code: str):
        site = get_object_or_404(Site.objects.filter(id__in=access.site_ids_for(request.user)), code=site_code)
        body = ical.calendar_for(selectors.site_calendar_visits(site.pk), name=f"{site.code} sessions")
        return _ics(body, f"{site.code}.ics")


class MyCalendar(APIView):
    renderer_classes = [JSONRenderer, ICalRenderer]

    @extend_schema(responses={(200, "text/calendar"): OpenApiResponse(description="iCalendar feed")})
    def get(self, request):
        body = ical.calendar_for(
            selectors.staff_calendar_visits(request.user), name=f"{request.user.get_username()} sessions"
        )
        return _ics(body, "me.ics")
