from django.urls import path

from assessments import api

urlpatterns = [
    path("instruments/", api.InstrumentList.as_view(), name="instrument-list"),
    path("instruments/<str:code>/", api.InstrumentDetail.as_view(), name="instrument-detail"),
    path("visits/<int:visit_id>/link/", api.VisitLink.as_view(), name="visit-link"),
    path("visits/<int:visit_id>/administrations/", api.VisitAdministrations.as_view(), name="visit-administrations"),
    path("administrations/<int:administration_id>/open/", api.AdministrationOpen.as_view(), name="administration-open"),
    # Keep the token as the segment right after links/: trialsite.logging redacts it there.
    path("links/<str:token>/", api.LinkDetail.as_view(), name="link-detail"),
    path("links/<str:token>/submit/", api.LinkSubmit.as_view(), name="link-submit"),
    path("responses/", api.ResponseCreate.as_view(), name="response-create"),
    path("responses/<int:response_id>/", api.ResponseDetail.as_view(), name="response-detail"),
    path("safety-alerts/", api.SafetyAlertList.as_view(), name="safety-alert-list"),
    path("safety-alerts/<int:alert_id>/acknowledge/", api.SafetyAlertAcknowledge.as_view(), name="safety-alert-ack"),
]
