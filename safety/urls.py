from django.urls import path

from safety import api

urlpatterns = [
    path("adverse-events/", api.AdverseEventListCreate.as_view(), name="adverse-event-list"),
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
    path("concomitant-medications/", api.MedicationListCreate.as_view(), name="medication-list"),
    path(
        "concomitant-medications/<int:concomitant_medication_id>/",
        api.MedicationDetail.as_view(),
        name="medication-detail",
    ),
    path(
        "concomitant-medications/<int:concomitant_medication_id>/correct/",
        api.MedicationCorrect.as_view(),
        name="medication-correct",
    ),
    path(
        "concomitant-medications/<int:concomitant_medication_id>/stop/",
        api.MedicationStop.as_view(),
        name="medication-stop",
    ),
    path("medication-overrides/", api.MedicationOverrideListCreate.as_view(), name="medication-override-list"),
    path(
        "medication-overrides/<int:medication_override_id>/",
        api.MedicationOverrideDetail.as_view(),
        name="medication-override-detail",
    ),
]
