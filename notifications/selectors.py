"""Outbox reads, scoped to the sites where the user manages participants (coordinators, investigators, admins)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from notifications.models import Notification
from participants.access import managed_site_ids


def notifications_for(user) -> QuerySet[Notification]:
    # One query per page: the participant, its site and the staff recipient come in the same SELECT.
    return (
        Notification.objects.filter(participant__site_id__in=managed_site_ids(user))
        .select_related("participant__site", "recipient_user")
        .order_by("-due_at", "-id")
    )


def notification_get(user, notification_id: int) -> Notification:
    """One row, or Http404 when it does not exist or lies outside the user's sites (the two look the same)."""
    return get_object_or_404(notifications_for(user), pk=notification_id)
