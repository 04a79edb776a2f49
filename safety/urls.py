from django.urls import path

from safety import api

urlpatterns = [
    path("adverse-events/", api.AdverseEventListCreate.as_view(), name="adverse-event-list"),
    path("adverse-events/summary/", api.AdverseEventSummaryView.as_view(), name="adverse-event-summary"),
    path("adverse-events/<int:adverse_event_id>/", api.AdverseEventDetail.as_view(), name="adverse-event-detail"),
    path(
        "adverse-events/<int:adverse_event_id>/correct/",
        api.AdverseEventCorrect.as_view(),
        name="adverse-event-correct",
    ),
    path(
        "adverse-events/<int:adverse_event_id>/follow-ups/",
        api.AdverseEventFollowUpCreate.as_view(),
        name="adverse-event-fu",
    ),
    path(
        "adverse-events/<int:adverse_event_id>/reviews/",
        api.AdverseEventReviewCreate.as_view(),
        name="adverse-event-review",
    ),
]
