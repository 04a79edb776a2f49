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
    path("treatment-guesses/", api.TreatmentGuessListCreate.as_view(), name="treatment-guess-list"),
    path(
        "treatment-guesses/<int:treatment_guess_id>/", api.TreatmentGuessDetail.as_view(), name="treatment-guess-detail"
    ),
    path(
        "treatment-guesses/<int:treatment_guess_id>/correct/",
        api.TreatmentGuessCorrect.as_view(),
        name="treatment-guess-correct",
    ),
    path("blinding-index/<str:study_code>/", api.BlindingIndexReport.as_view(), name="blinding-index-report"),
]

urlpatterns += [
    path("dosing-sessions/", api.DosingSessionListCreate.as_view(), name="dosing-session-list"),
    path("dosing-sessions/<int:dosing_session_id>/", api.DosingSessionDetail.as_view(), name="dosing-session-detail"),
    path(
        "dosing-sessions/<int:dosing_session_id>/record/",
        api.DosingSessionRecord.as_view(),
        name="dosing-session-record",
    ),
    path("dosing-sessions/<int:dosing_session_id>/doses/", api.DosingDoses.as_view(), name="dosing-session-doses"),
    path(
        "dosing-sessions/<int:dosing_session_id>/vital-signs/",
        api.VitalSignCreate.as_view(),
        name="dosing-session-vital-signs",
    ),
    path(
        "dosing-sessions/<int:dosing_session_id>/close/", api.DosingSessionClose.as_view(), name="dosing-session-close"
    ),
    path("vital-signs/<int:vital_sign_id>/correct/", api.VitalSignCorrect.as_view(), name="vital-sign-correct"),
]
