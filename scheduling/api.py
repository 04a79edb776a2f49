"""Scheduling API (v1). Thin views: parse, fetch with an access check, call one service, render. Views run no
queries of their own: every read is a selector (scheduling's or participants').

Permissions: every role at a site reads its visits, calendar and rooms. Coordinators, investigators and admins make
every change to visits; therapists may also schedule (book) sessions, since they book dosing sessions as a dyad.
Rooms are configuration: only an administrator creates, changes or retires them (checked by the room services)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.http import Http404, HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from participants import access
from participants import selectors as participant_selectors
from scheduling import ical, selectors, services
from scheduling.blinded_view import Lens
from scheduling.models import ProtocolDeviation, Room, Visit
from scheduling.serializers import (
    CompleteInput,
    DeviationInput,
    DeviationOutput,
    ReasonInput,
    RoomCreateInput,
    RoomOutput,
    RoomRetireInput,
    RoomUpdateInput,
    ScheduledVisitOutput,
    ScheduleInput,
    UnscheduledVisitInput,
    VisitOutput,
)
from trialsite.errors import ServiceError
from trialsite.roles import MANAGE, SCHEDULE


def _visit_out(request: Request, visit_id: int) -> dict[str, Any]:
    """One visit as the user sees it (arm-neutral for a blinded viewer)."""
    lens = Lens(request.user)
    return dict(VisitOutput(selectors.visit_get(request.user, visit_id), context={"lens": lens}).data)


def _require(request: Request, site_id: int, roles: set[str] | frozenset[str], what: str) -> None:
    access.require_role(request.user, site_id, roles, what)


# django-filter ships no type information, so its FilterSet is Any to the type checker.
class VisitFilter(django_filters.FilterSet):
    # The visit's own site (a copy of its participant's, which never changes), by id: its index serves the order.
    site = django_filters.CharFilter(method="filter_site")
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

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        if data is not None and "from" in data:
            data = data.copy()
            data["from_"] = data["from"]
        super().__init__(data, *args, **kwargs)

    def filter_site(self, qs: QuerySet[Visit], name: str, value: Any) -> QuerySet[Visit]:
        return qs.filter(site_id=participant_selectors.site_pk_of_code(value))

    def filter_from(self, qs: QuerySet[Visit], name: str, value: Any) -> QuerySet[Visit]:
        return qs.filter(Q(target_date__gte=value) | Q(target_date__isnull=True, scheduled_start__date__gte=value))

    def filter_to(self, qs: QuerySet[Visit], name: str, value: Any) -> QuerySet[Visit]:
        return qs.filter(Q(target_date__lte=value) | Q(target_date__isnull=True, scheduled_start__date__lte=value))


class VisitList(ListAPIView[Visit]):
    serializer_class = VisitOutput
    filterset_class = VisitFilter

    def get_queryset(self) -> QuerySet[Visit]:
        # A blinded viewer's list holds only the visits shown with dates (``scheduling.blinded_view``).
        self.lens = Lens(self.request.user)
        visits = self.lens.annotate(self.lens.listed(selectors.visits_listed_for(self.request.user)))
        return visits.order_by("target_date", "participant__participant_id", "id")

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "lens": getattr(self, "lens", None)}


class ParticipantVisits(APIView):
    @extend_schema(responses=VisitOutput(many=True))
    def get(self, request: Request, participant_id: str) -> Response:
        participant = participant_selectors.participant_get(request.user, participant_id)
        lens = Lens(request.user)
        visits = lens.order(lens.annotate(lens.shown(selectors.visits_of(participant))))
        return Response(VisitOutput(visits, many=True, context={"lens": lens}).data)

    @extend_schema(request=UnscheduledVisitInput, responses={201: VisitOutput})
    def post(self, request: Request, participant_id: str) -> Response:
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
        return Response(_visit_out(request, visit.pk), status=status.HTTP_201_CREATED)


class VisitDetail(APIView):
    @extend_schema(responses=VisitOutput)
    def get(self, request: Request, visit_id: int) -> Response:
        return Response(_visit_out(request, visit_id))


class VisitSchedule(APIView):
    @extend_schema(request=ScheduleInput, responses={200: ScheduledVisitOutput, 409: OpenApiResponse()})
    def post(self, request: Request, visit_id: int) -> Response:
        visit = selectors.visit_get(request.user, visit_id)
        payload = ScheduleInput(data=request.data)
        payload.is_valid(raise_exception=True)
        _require(request, visit.participant.site_id, SCHEDULE, "schedule visits")
        values = payload.validated_data
        room = selectors.room_named(visit.participant.site_id, values.get("room"))
        _, warnings = services.visit_schedule(
            visit=visit,
            start=values["start"],
            end=values.get("end"),
            room=room,
            staff=values.get("staff", []),
            by=request.user,
            reason=values.get("reason") or None,
        )
        data = _visit_out(request, visit_id)
        data["warnings"] = warnings
        return Response(data)


class _VisitAction(APIView):
    input_class: type[Serializer[Any]] = ReasonInput

    def post(self, request: Request, visit_id: int) -> Response:
        visit = selectors.visit_get(request.user, visit_id)
        payload = self.input_class(data=request.data)
        payload.is_valid(raise_exception=True)
        _require(request, visit.participant.site_id, MANAGE, "change visits")
        self.perform(request, visit, payload.validated_data)
        return Response(_visit_out(request, visit_id))

    def perform(self, request: Request, visit: Visit, values: Mapping[str, Any]) -> None:  # pragma: no cover
        raise ServiceError("unsupported action")  # every subclass overrides


@extend_schema(request=CompleteInput, responses=VisitOutput)
class VisitComplete(_VisitAction):
    input_class = CompleteInput

    def perform(self, request: Request, visit: Visit, values: Mapping[str, Any]) -> None:
        services.visit_complete(
            visit=visit, occurred_at=values["occurred_at"], by=request.user, reason=values.get("reason") or None
        )


@extend_schema(request=ReasonInput, responses=VisitOutput)
class VisitMiss(_VisitAction):
    def perform(self, request: Request, visit: Visit, values: Mapping[str, Any]) -> None:
        services.visit_miss(visit=visit, reason=values["reason"], by=request.user)


@extend_schema(request=ReasonInput, responses=VisitOutput)
class VisitCancel(_VisitAction):
    def perform(self, request: Request, visit: Visit, values: Mapping[str, Any]) -> None:
        services.visit_cancel(visit=visit, reason=values["reason"], by=request.user)


class ParticipantDeviations(APIView):
    @extend_schema(responses=DeviationOutput(many=True))
    def get(self, request: Request, participant_id: str) -> Response:
        participant = participant_selectors.participant_get(request.user, participant_id)
        rows = selectors.deviations_of(request.user, participant)
        return Response(DeviationOutput(rows, many=True, context={"lens": Lens(request.user)}).data)

    @extend_schema(request=DeviationInput, responses={201: DeviationOutput})
    def post(self, request: Request, participant_id: str) -> Response:
        participant = participant_selectors.participant_get(request.user, participant_id)
        payload = DeviationInput(data=request.data)
        payload.is_valid(raise_exception=True)
        _require(request, participant.site_id, MANAGE, "record deviations")
        values = payload.validated_data
        visit = None
        if values.get("visit"):
            visit = selectors.visit_of(participant, values["visit"])
            if visit is None:
                raise ServiceError("unknown visit", field_errors={"visit": ["not a visit of this participant"]})
        deviation = services.deviation_record(
            participant=participant,
            visit=visit,
            type=values["type"],
            description=values["description"],
            by=request.user,
        )
        row = selectors.deviation_get(request.user, deviation.pk)
        return Response(DeviationOutput(row, context={"lens": Lens(request.user)}).data, status=status.HTTP_201_CREATED)


class DeviationFilter(django_filters.FilterSet):
    site = django_filters.CharFilter(field_name="participant__site__code")
    type = django_filters.MultipleChoiceFilter(choices=ProtocolDeviation.Type.choices)

    class Meta:
        model = ProtocolDeviation
        fields = ["site", "type"]


class DeviationList(ListAPIView[ProtocolDeviation]):
    serializer_class = DeviationOutput
    filterset_class = DeviationFilter

    def get_queryset(self) -> QuerySet[ProtocolDeviation]:
        return selectors.deviations_for(self.request.user).order_by("-recorded_at", "-id")

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "lens": Lens(self.request.user)}


class RoomListCreate(ListAPIView[Room]):
    serializer_class = RoomOutput
    filterset_fields = {"site__code": ["exact"]}

    def get_queryset(self) -> QuerySet[Room]:
        return selectors.rooms_for(self.request.user).order_by("site__code", "name")

    @extend_schema(
        request=RoomCreateInput,
        responses={201: RoomOutput, 403: OpenApiResponse(description="Not an administrator at the room's site.")},
    )
    def post(self, request: Request) -> Response:
        payload = RoomCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values = payload.validated_data
        site = participant_selectors.site_visible(request.user, values["site"])
        if site is None:
            raise ServiceError("unknown site", field_errors={"site": [f"no site {values['site']!r}"]})
        room = services.room_create(
            site=site, name=values["name"], overnight_capable=values["overnight_capable"], by=request.user
        )
        return Response(RoomOutput(selectors.room_get(request.user, room.pk)).data, status=status.HTTP_201_CREATED)


class RoomDetail(APIView):
    @extend_schema(responses=RoomOutput)
    def get(self, request: Request, id: int) -> Response:
        return Response(RoomOutput(selectors.room_get(request.user, id)).data)

    @extend_schema(
        request=RoomUpdateInput,
        responses={200: RoomOutput, 403: OpenApiResponse(description="Not an administrator at the room's site.")},
    )
    def patch(self, request: Request, id: int) -> Response:
        room = selectors.room_get(request.user, id)
        payload = RoomUpdateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        values = payload.validated_data
        services.room_update(
            room=room,
            name=values.get("name"),
            overnight_capable=values.get("overnight_capable"),
            active=values.get("active"),
            reason=values.get("reason") or None,
            by=request.user,
        )
        return Response(RoomOutput(selectors.room_get(request.user, id)).data)


class RoomRetire(APIView):
    @extend_schema(
        request=RoomRetireInput,
        responses={200: RoomOutput, 403: OpenApiResponse(description="Not an administrator at the room's site.")},
    )
    def post(self, request: Request, id: int) -> Response:
        room = selectors.room_get(request.user, id)
        payload = RoomRetireInput(data=request.data)
        payload.is_valid(raise_exception=True)
        services.room_retire(room=room, reason=payload.validated_data["reason"], by=request.user)
        return Response(RoomOutput(selectors.room_get(request.user, id)).data)


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

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> Any:
        if isinstance(data, bytes):
            return data
        return JSONRenderer().render(data)


class _CalendarView(APIView):
    renderer_classes = [JSONRenderer, ICalRenderer]

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Any:
        # An error (unknown site, no credentials) is a JSON body and says so, even to a client that asked for a
        # calendar (Accept: text/calendar, ?format=ics): it is not one.
        if isinstance(response, Response) and response.status_code >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class SiteCalendar(_CalendarView):
    @extend_schema(responses={(200, "text/calendar"): OpenApiResponse(description="iCalendar feed")})
    def get(self, request: Request, site_code: str) -> HttpResponse:
        site = participant_selectors.site_visible(request.user, site_code)
        if site is None:
            raise Http404("No Site matches the given query.")
        body = ical.calendar_seen_by(
            request.user, selectors.site_calendar_visits(site.pk), name=f"{site.code} sessions"
        )
        return _ics(body, f"{site.code}.ics")


class MyCalendar(_CalendarView):
    @extend_schema(responses={(200, "text/calendar"): OpenApiResponse(description="iCalendar feed")})
    def get(self, request: Request) -> HttpResponse:
        body = ical.calendar_seen_by(
            request.user, selectors.staff_calendar_visits(request.user), name=f"{request.user.get_username()} sessions"
        )
        return _ics(body, "me.ics")
