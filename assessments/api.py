"""Assessments API (v1). Thin views: parse, fetch with an access check, call one service, render.

The participant link endpoints (``/api/v1/links/<token>/...``) take no login: the token is the credential. They answer
404 alike for unknown, revoked, expired and submitted links, and 429 to a wrong token once its address has sent too
many wrong tokens (a working token is always served).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response as HttpResponse
from rest_framework.views import APIView

from assessments import library, links, selectors, services, texts
from assessments.models import ParticipantLink, Response, SafetyAlert
from assessments.serializers import (
    AcknowledgeInput,
    AdministrationOutput,
    LinkOutput,
    LinkSaveInput,
    OpenInput,
    ResponseCorrectInput,
    ResponseCreateInput,
    SafetyAlertOutput,
    render_instrument,
    render_items,
    render_response,
)
from assessments.windows import administration_status
from participants import access
from participants import selectors as participant_selectors
from scheduling import selectors as scheduling_selectors
from trialsite.errors import PermissionDeniedError

GONE = {"detail": "This link cannot be used. Please contact your study team.", "code": "link_unavailable"}
LIMITED = {
    "detail": "Too many wrong links were tried from this address. Please try again later.",
    "code": "rate_limited",
}


# --- instruments --------------------------------------------------------------------------------------------------


class InstrumentList(APIView):
    @extend_schema(operation_id="instruments_list", responses={200: {"type": "array", "items": {"type": "object"}}})
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse([render_instrument(i, full=False) for i in library.instruments_all()])


class InstrumentDetail(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, code: str) -> HttpResponse:
        try:
            instrument = library.instrument_get(code)
        except KeyError:
            return HttpResponse({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
        language = request.query_params.get("language", "en")
        return HttpResponse(render_instrument(instrument, language=language))


# --- administrations and links (staff) ---------------------------------------------------------------------------


class VisitAdministrations(APIView):
    @extend_schema(responses={200: AdministrationOutput(many=True)})
    def get(self, request: Request, visit_id: int) -> HttpResponse:
        # A pure read: the administrations were created with the visit; "expired" is computed from the clock.
        visit = scheduling_selectors.visit_get(request.user, visit_id)
        rows = list(selectors.administrations_of_visit(visit))
        held = selectors.held_administration_ids(visit.participant, rows)
        return HttpResponse(AdministrationOutput(rows, many=True, context={"held": held}).data)


class AdministrationOpen(APIView):
    @extend_schema(request=OpenInput, responses={200: AdministrationOutput})
    def post(self, request: Request, administration_id: int) -> HttpResponse:
        adm = selectors.administration_get(request.user, administration_id)
        payload = OpenInput(data=request.data)
        payload.is_valid(raise_exception=True)
        if not access.can_manage(request.user, adm.participant.site_id):
            raise PermissionDeniedError("your role at this site cannot open questionnaires")
        adm = services.administration_open_early(
            administration=adm, by=request.user, reason=payload.validated_data.get("reason") or None
        )
        held = selectors.held_administration_ids(adm.participant, [adm])
        return HttpResponse(AdministrationOutput(adm, context={"held": held}).data)


class VisitLink(APIView):
    @extend_schema(request=None, responses={201: LinkOutput})
    def post(self, request: Request, visit_id: int) -> HttpResponse:
        visit = scheduling_selectors.visit_get(request.user, visit_id)
        if not access.can_manage(request.user, visit.participant.site_id):
            raise PermissionDeniedError("your role at this site cannot issue participant links")
        link, token = services.link_issue(visit=visit, by=request.user)
        return HttpResponse(
            LinkOutput({"url": links.link_url(token), "expires_at": link.expires_at}).data,
            status=status.HTTP_201_CREATED,
        )


# --- participant link JSON flow ----------------------------------------------------------------------------------


def link_state(link: ParticipantLink) -> dict[str, Any]:
    participant = link.participant
    language = texts.language_of(participant)
    now = timezone.now()
    pending = selectors.link_pending(link, now)
    # The library and the packs as read for this request: no query per questionnaire.
    read = selectors.link_wording(link)
    items = []
    for position, adm in enumerate(pending, start=1):
        instrument = read.library.instrument(adm.instrument_code)
        # The pack's wording in the participant's language (a held questionnaire is not pending: it has none).
        wording = read.participant_wording(adm, language)
        items.append(
            {
                "position": position,
                "of": len(pending),
                "instrument": adm.instrument_code,
                "title": wording.title,
                "time_frame": wording.time_frame,
                "instructions": wording.instructions,
                "placeholder_wording": wording.placeholder,
                "status": administration_status(adm, now),
                "closes_at": adm.closes_at,
                "items": render_items(instrument, wording),
                "answers": adm.draft_answers,
            }
        )
    return {
        "language": language,
        "visit": link.visit.name,
        "expires_at": link.expires_at,
        "site": {
            "name": participant.site.name,
            "email": participant.site.contact_email,
            "phone": participant.site.contact_phone,
        },
        "administrations": items,
    }


def _wrong_token(request: Request) -> HttpResponse:
    """A token that opens nothing: counted against the address, 404, or 429 once the address sent too many. A working
    token never comes here, so the limit never refuses one."""
    if links.wrong_token_limited(links.client_address(request)):
        return HttpResponse(LIMITED, status=status.HTTP_429_TOO_MANY_REQUESTS)
    return HttpResponse(GONE, status=status.HTTP_404_NOT_FOUND)


class _LinkView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    rate_limited = True  # the wrong-token limit answers 429 (documented by trialsite.schema)

    def resolve(self, request: Request, token: str) -> ParticipantLink | HttpResponse:
        """The usable link, or the refusal to answer with (429 when limited, else 404 for any unusable token)."""
        link = selectors.link_find(token)
        if link is None:
            return _wrong_token(request)
        return link


class LinkDetail(_LinkView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, token: str) -> HttpResponse:
        # A pure read: mail scanners and link previews open links, so nothing is consumed or changed here.
        link = self.resolve(request, token)
        if isinstance(link, HttpResponse):
            return link
        return HttpResponse(link_state(link))

    @extend_schema(request=LinkSaveInput, responses={200: OpenApiTypes.OBJECT})
    def put(self, request: Request, token: str) -> HttpResponse:
        link = self.resolve(request, token)
        if isinstance(link, HttpResponse):
            return link
        data = LinkSaveInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.link_save_answers(link=link, answers_by_instrument=data.validated_data["answers"])
        return HttpResponse(link_state(link))


class LinkSubmit(_LinkView):
    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, token: str) -> HttpResponse:
        """Submit the saved answers. A repeated submit (double click, retry, second tab) answers 200 with the same
        response ids as the first; it never stores a second response."""
        link = selectors.link_find(token)
        if link is None:
            earlier = selectors.link_submitted(token)
            if earlier is None:
                return _wrong_token(request)
            return HttpResponse(_submitted_body(selectors.link_responses(earlier)))
        responses = services.link_submit(link=link)
        return HttpResponse(_submitted_body(responses))


def _submitted_body(responses: Iterable[Response]) -> dict[str, Any]:
    return {"submitted": True, "responses": [{"id": r.pk, "instrument": r.instrument_code} for r in responses]}


# --- staff entry ---------------------------------------------------------------------------------------------------


class ResponseCreate(APIView):
    @extend_schema(request=ResponseCreateInput, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> HttpResponse:
        data = ResponseCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        participant = participant_selectors.participant_get(request.user, v["participant_id"])
        visit = scheduling_selectors.visit_get(request.user, v["visit_id"], staff=False)
        # The stored response comes back with its answers and scores in place: nothing is read back to render it
        # (the participant was read within the user's sites above).
        response = services.response_create_staff(
            participant=participant,
            visit=visit,
            instrument_code=v["instrument"],
            answers=v["answers"],
            by=request.user,
        )
        return HttpResponse(render_response(response), status=status.HTTP_201_CREATED)


class ResponseDetail(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, response_id: int) -> HttpResponse:
        return HttpResponse(render_response(selectors.response_get(request.user, response_id)))

    @extend_schema(request=ResponseCorrectInput, responses={200: OpenApiTypes.OBJECT})
    def patch(self, request: Request, response_id: int) -> HttpResponse:
        response = selectors.response_get(request.user, response_id)
        data = ResponseCorrectInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.response_correct(
            response=response,
            answers=data.validated_data["answers"],
            reason=data.validated_data["reason"],
            by=request.user,
        )
        return HttpResponse(render_response(selectors.response_get(request.user, response_id)))


# --- safety alerts -------------------------------------------------------------------------------------------------


class SafetyAlertList(ListAPIView[SafetyAlert]):
    serializer_class = SafetyAlertOutput

    def get_queryset(self) -> QuerySet[SafetyAlert]:
        open_only = self.request.query_params.get("open") in ("1", "true")
        return selectors.safety_alerts_listed(self.request.user, open_only=open_only)


class SafetyAlertAcknowledge(APIView):
    @extend_schema(request=AcknowledgeInput, responses={200: SafetyAlertOutput})
    def post(self, request: Request, alert_id: int) -> HttpResponse:
        alert = selectors.safety_alert_get(request.user, alert_id)
        data = AcknowledgeInput(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            alert = services.safety_alert_acknowledge(alert=alert, note=data.validated_data["note"], by=request.user)
        return HttpResponse(SafetyAlertOutput(alert).data)
