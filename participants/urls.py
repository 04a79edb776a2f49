from django.urls import path

from participants import api

urlpatterns = [
    path("participants/", api.ParticipantListCreate.as_view(), name="participant-list"),
    path("participants/<str:participant_id>/", api.ParticipantDetail.as_view(), name="participant-detail"),
    path(
        "participants/<str:participant_id>/eligibility/",
        api.ParticipantEligibility.as_view(),
        name="participant-eligibility",
    ),
    path("participants/<str:participant_id>/consent/", api.ParticipantConsent.as_view(), name="participant-consent"),
    path("participants/<str:participant_id>/enroll/", api.ParticipantEnroll.as_view(), name="participant-enroll"),
    path(
        "participants/<str:participant_id>/randomize/", api.ParticipantRandomize.as_view(), name="participant-randomize"
    ),
    path("participants/<str:participant_id>/withdraw/", api.ParticipantWithdraw.as_view(), name="participant-withdraw"),
    path("participants/<str:participant_id>/history/", api.ParticipantHistory.as_view(), name="participant-history"),
    path("studies/", api.StudyList.as_view(), name="study-list"),
    path("sites/", api.SiteList.as_view(), name="site-list"),
]
