from django.urls import path

from scheduling import api

urlpatterns = [
    path("participants/<str:participant_id>/visits/", api.ParticipantVisits.as_view(), name="participant-visits"),
    path(
        "participants/<str:participant_id>/deviations/",
        api.ParticipantDeviations.as_view(),
        name="participant-deviations",
    ),
    path("visits/", api.VisitList.as_view(), name="visit-list"),
    path("visits/<int:visit_id>/", api.VisitDetail.as_view(), name="visit-detail"),
    path("visits/<int:visit_id>/schedule/", api.VisitSchedule.as_view(), name="visit-schedule"),
    path("visits/<int:visit_id>/complete/", api.VisitComplete.as_view(), name="visit-complete"),
    path("visits/<int:visit_id>/miss/", api.VisitMiss.as_view(), name="visit-miss"),
    path("visits/<int:visit_id>/cancel/", api.VisitCancel.as_view(), name="visit-cancel"),
    path("deviations/", api.DeviationList.as_view(), name="deviation-list"),
    path("rooms/", api.RoomListCreate.as_view(), name="room-list"),
    path("rooms/<int:id>/", api.RoomDetail.as_view(), name="room-detail"),
    path("rooms/<int:id>/retire/", api.RoomRetire.as_view(), name="room-retire"),
    path("calendar/sites/<str:site_code>.ics", api.SiteCalendar.as_view(), name="calendar-site"),
    path("calendar/me.ics", api.MyCalendar.as_view(), name="calendar-me"),
]
