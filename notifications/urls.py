from django.urls import path

from notifications import api

urlpatterns = [
    path("notifications/", api.NotificationList.as_view(), name="notification-list"),
    path("notifications/<int:notification_id>/retry/", api.NotificationRetry.as_view(), name="notification-retry"),
]
