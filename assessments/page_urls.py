"""Participant pages under /l/. The token appears only in /l/<token>/, a shape trialsite.logging redacts."""

from django.urls import path

from assessments import views

urlpatterns = [
    path("", views.start, name="participant-start"),
    path("q/<int:number>/", views.page, name="participant-page"),
    path("q/<int:number>/<int:screen>/", views.page, name="participant-screen"),
    path("q/<int:number>/autosave/", views.autosave, name="participant-autosave"),
    path("review/", views.review, name="participant-review"),
    path("done/", views.done, name="participant-done"),
    path("<str:token>/", views.link_open, name="participant-link"),
]
