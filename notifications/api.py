"""Notifications API (v1): the outbox as coordinators see it, and a retry for failed messages."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import selectors, services
from notifications.models import Notification
from notifications.pagination import OutboxCursorPagination
from notifications.serializers import NotificationOutput, RetryInput


# django-filter ships no type information, so its base class is Any to mypy.
class NotificationFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Notification.Status.choices)
    participant_id = django_filters.CharFilter(field_name="participant__participant_id")
    channel = django_filters.CharFilter()

    class Meta:
        model = Notification
        fields = ["status", "participant_id", "channel"]


class NotificationList(ListAPIView[Notification]):
    """The outbox, newest first, a page at a time by cursor: no page number and no total, so page 1,000 of a
    10,000-participant trial costs what page 1 does (notifications/pagination.py)."""

    serializer_class = NotificationOutput
    filterset_class = NotificationFilter
    pagination_class = OutboxCursorPagination

    def get_queryset(self) -> QuerySet[Notification]:
        return selectors.notifications_for(self.request.user)


class NotificationRetry(APIView):
    @extend_schema(request=RetryInput, responses=NotificationOutput)
    def post(self, request: Request, notification_id: int) -> Response:
        row = selectors.notification_get(request.user, notification_id)
        payload = RetryInput(data=request.data)
        payload.is_valid(raise_exception=True)
        services.notification_retry(notification=row, by=request.user, reason=payload.validated_data.get("reason"))
        return Response(NotificationOutput(selectors.notification_get(request.user, notification_id)).data)
