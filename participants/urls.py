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
    path(
        "participants/<str:participant_id>/demographics/",
        api.ParticipantDemographics.as_view(),
        name="participant-demographics",
    ),
    path("participants/<str:participant_id>/history/", api.ParticipantHistory.as_view(), name="participant-history"),
    path("studies/", api.StudyListCreate.as_view(), name="study-list"),
    path("studies/<str:code>/", api.StudyDetail.as_view(), name="study-detail"),
    path("studies/<str:code>/arms/", api.StudyArms.as_view(), name="study-arms"),
    path("studies/<str:code>/criteria/", api.StudyCriteria.as_view(), name="study-criteria"),
    path("studies/<str:code>/criteria/<int:id>/retire/", api.CriterionRetire.as_view(), name="criterion-retire"),
    path("studies/<str:code>/consent-documents/", api.StudyConsentDocuments.as_view(), name="study-consent-documents"),
    path("studies/<str:code>/unblind/", api.StudyUnblind.as_view(), name="study-unblind"),
    path("studies/<str:code>/unblind/withdraw/", api.StudyUnblindWithdraw.as_view(), name="study-unblind-withdraw"),
    path("sites/", api.SiteListCreate.as_view(), name="site-list"),
    path("sites/<str:site_code>/", api.SiteDetail.as_view(), name="site-detail"),
    path("sites/<str:site_code>/memberships/", api.SiteMemberships.as_view(), name="site-memberships"),
    path("sites/<str:site_code>/memberships/<int:id>/", api.MembershipDetail.as_view(), name="membership-detail"),
]
