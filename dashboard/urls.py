"""Staff pages at the root of the site: /, /login/ (and its second factor), /logout/, /password/, /account/, /home/, /settings/language/, /calendar/,
/overview/, /instrument-texts/, and the worklist actions."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard import (
    account,
    actions,
    adverse_events,
    calendar,
    dosing_day,
    guesses,
    instrument_texts,
    links,
    matrix,
    medications,
    overview,
    views,
)
from dashboard.participant import participant_page

urlpatterns = [
    path("", views.root, name="root"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The second factor after the password, and its first enrolment (dashboard/account.py).
    path("login/two-factor/", account.second_factor, name="login-second-factor"),
    path("login/two-factor/setup/", account.second_factor_setup, name="login-second-factor-setup"),
    path("account/", account.account, name="dashboard-account"),
    path("account/tokens/", account.token_create, name="dashboard-account-token-create"),
    path("account/tokens/<int:token_id>/revoke/", account.token_revoke, name="dashboard-account-token-revoke"),
    path("account/calendar-feed/", account.feed_create, name="dashboard-account-feed-create"),
    path("account/calendar-feed/revoke/", account.feed_revoke, name="dashboard-account-feed-revoke"),
    # A personal calendar feed: the secret in the URL is the credential (calendar apps cannot sign in).
    path("calendar/feed/<str:secret>.ics", account.calendar_feed, name="calendar-feed"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("home/", views.home, name="dashboard-home"),
    path("matrix/", matrix.matrix, name="dashboard-matrix"),
    path("settings/language/", views.language, name="dashboard-language"),
    path("alerts/<int:alert_id>/acknowledge/", views.alert_acknowledge, name="dashboard-alert-acknowledge"),
    path(
        "notifications/<int:notification_id>/retry/",
        views.notification_retry,
        name="dashboard-notification-retry",
    ),
    # Before the participant page: "new" is not a participant id.
    path("participants/new/", actions.participant_new, name="dashboard-participant-new"),
    path("participants/<str:participant_id>/", participant_page, name="dashboard-participant"),
    path(
        "participants/<str:participant_id>/guesses/",
        guesses.participant_guesses,
        name="dashboard-participant-guesses",
    ),
    path("guesses/", guesses.guesses, name="dashboard-guesses"),
    path("calendar/", calendar.calendar, name="dashboard-calendar"),
    path("calendar/book/", calendar.book, name="dashboard-calendar-book"),
    path("calendar/rooms/", calendar.room_create, name="dashboard-calendar-room-create"),
    path("calendar/rooms/<int:room_id>/retire/", calendar.room_retire, name="dashboard-calendar-room-retire"),
    path("visits/<int:visit_id>/link/", links.link_send, name="dashboard-link-send"),
    # The participant page's actions (dashboard/actions.py).
    path("participants/<str:participant_id>/eligibility/", actions.eligibility, name="dashboard-eligibility"),
    path("participants/<str:participant_id>/consent/", actions.consent, name="dashboard-consent"),
    path("participants/<str:participant_id>/enroll/", actions.enroll, name="dashboard-enroll"),
    path("participants/<str:participant_id>/randomize/", actions.randomize, name="dashboard-randomize"),
    path("participants/<str:participant_id>/withdraw/", actions.withdraw, name="dashboard-withdraw"),
    path("participants/<str:participant_id>/demographics/", actions.demographics, name="dashboard-demographics"),
    path(
        "participants/<str:participant_id>/questionnaires/<int:administration_id>/open/",
        actions.questionnaire_open,
        name="dashboard-questionnaire-open",
    ),
    path(
        "participants/<str:participant_id>/responses/<int:response_id>/correct/",
        actions.response_correct,
        name="dashboard-response-correct",
    ),
    path("participants/<str:participant_id>/medications/", medications.medications, name="dashboard-medications"),
    path(
        "participants/<str:participant_id>/medications/<int:medication_id>/correct/",
        medications.medication_correct,
        name="dashboard-medication-correct",
    ),
    path(
        "participants/<str:participant_id>/medications/<int:medication_id>/stop/",
        medications.medication_stop,
        name="dashboard-medication-stop",
    ),
    # The dosing-day screen of a dosing visit (dashboard/dosing_day.py) and its forms; the list of sessions.
    path("visits/<int:visit_id>/dosing/", dosing_day.dosing_day, name="dashboard-dosing-day"),
    path("visits/<int:visit_id>/dosing/doses/", dosing_day.dosing_doses, name="dashboard-dosing-doses"),
    path("visits/<int:visit_id>/dosing/vitals/", dosing_day.dosing_vital, name="dashboard-dosing-vital"),
    path(
        "visits/<int:visit_id>/dosing/vitals/<int:vital_id>/correct/",
        dosing_day.dosing_vital_correct,
        name="dashboard-dosing-vital-correct",
    ),
    path("visits/<int:visit_id>/dosing/close/", dosing_day.dosing_close, name="dashboard-dosing-close"),
    path("dosing/", dosing_day.dosing_sessions, name="dashboard-dosing-sessions"),
    path("visits/<int:visit_id>/schedule/", actions.visit_schedule, name="dashboard-visit-schedule"),
    path("visits/<int:visit_id>/complete/", actions.visit_complete, name="dashboard-visit-complete"),
    path("visits/<int:visit_id>/miss/", actions.visit_miss, name="dashboard-visit-miss"),
    path("visits/<int:visit_id>/cancel/", actions.visit_cancel, name="dashboard-visit-cancel"),
    # Django's set_language: the language switch before signing in (a cookie; signed-in staff keep theirs per user).
    path("i18n/", include("django.conf.urls.i18n")),
    path("overview/", overview.overview, name="dashboard-overview"),
    # The adverse-event pages (dashboard/adverse_events.py): "new" and "summary" before an event's number.
    path("adverse-events/", adverse_events.log, name="dashboard-adverse-events"),
    path("adverse-events/new/", adverse_events.record, name="dashboard-adverse-event-new"),
    path("adverse-events/summary/", adverse_events.summary, name="dashboard-adverse-event-summary"),
    path("adverse-events/<int:event_id>/", adverse_events.detail, name="dashboard-adverse-event"),
    path("adverse-events/<int:event_id>/correct/", adverse_events.correct, name="dashboard-adverse-event-correct"),
    path(
        "adverse-events/<int:event_id>/follow-up/", adverse_events.follow_up, name="dashboard-adverse-event-follow-up"
    ),
    path("adverse-events/<int:event_id>/review/", adverse_events.review, name="dashboard-adverse-event-review"),
    path("instrument-texts/", instrument_texts.instrument_texts, name="dashboard-instrument-texts"),
]
